// Package demo is `sluice demo`: sample events, pipelines over the embedded
// stack, and a live summary.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// Generator produces sample shop events (page views, orders, signups) as
// JSON at a steady rate.
type Generator struct {
	cl       *kgo.Client
	topic    string
	rate     int
	produced atomic.Int64
	failed   atomic.Int64
}

// NewGenerator connects a producer.
func NewGenerator(brokers []string, topic string, perSecond int) (*Generator, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("sluice-demo-generator"), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Generator{cl: cl, topic: topic, rate: perSecond}, nil
}

// Produced is how many events the broker acked.
func (g *Generator) Produced() int64 { return g.produced.Load() }

var (
	kinds    = []string{"page_view", "page_view", "page_view", "order", "signup"}
	pages    = []string{"/", "/films", "/films/42", "/cart", "/checkout", "/about"}
	products = []string{"The Third Man", "Metropolis", "Rashomon", "Stalker", "Vertigo", "Ran"}
)

// Event is one sample event.
type Event struct {
	ID       int64     `json:"id"`
	Kind     string    `json:"kind"`
	UserID   int       `json:"user_id"`
	Page     string    `json:"page,omitempty"`
	Product  string    `json:"product,omitempty"`
	Amount   float64   `json:"amount,omitempty"`
	Occurred time.Time `json:"occurred_at"`
}

// Run produces until ctx is done.
func (g *Generator) Run(ctx context.Context) error {
	defer g.cl.Close()
	lim := rate.NewLimiter(rate.Limit(g.rate), max(1, g.rate/50))
	var id int64
	for {
		if err := lim.Wait(ctx); err != nil {
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = g.cl.Flush(flushCtx)
			return nil
		}
		id++
		ev := Event{ID: id, Kind: kinds[rand.N(len(kinds))], UserID: 1 + rand.N(500), Occurred: time.Now().UTC()}
		switch ev.Kind {
		case "page_view":
			ev.Page = pages[rand.N(len(pages))]
		case "order":
			ev.Product = products[rand.N(len(products))]
			ev.Amount = float64(rand.N(5000)) / 100
		}
		v, _ := json.Marshal(ev)
		r := &kgo.Record{Topic: g.topic, Key: fmt.Appendf(nil, "user-%d", ev.UserID), Value: v,
			Headers: []kgo.RecordHeader{{Key: "kind", Value: []byte(ev.Kind)}}}
		g.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				g.failed.Add(1)
				return
			}
			g.produced.Add(1)
		})
	}
}
