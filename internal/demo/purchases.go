package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// purchaseSchema is the Avro schema of the demo's purchase events, in the
// shape of the Dataflow Kafka_to_BigQuery scenario: one topic, many event
// types, one BigQuery table per type.
const purchaseSchema = `{"type":"record","name":"PurchaseRequestEvent","namespace":"demo.shop","fields":[
  {"name":"event_id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"event_type","type":"string"},
  {"name":"user_id","type":"long"},
  {"name":"sku","type":"string"},
  {"name":"quantity","type":"int"},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
  {"name":"currency","type":{"type":"enum","name":"Currency","symbols":["EUR","USD","GBP"]}},
  {"name":"coupon","type":["null","string"],"default":null},
  {"name":"requested_at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

// eventTypes become table names: kafka-purchase_<region>_<channel>.
var eventTypes = func() []string {
	var out []string
	for _, region := range []string{"eu", "us", "apac", "latam", "africa"} {
		for _, channel := range []string{"web", "app", "store", "phone"} {
			out = append(out, "purchase_"+region+"_"+channel)
		}
	}
	return out
}()

// PurchaseGenerator produces Avro purchase events in Confluent wire format,
// registering the schema in the registry like a Confluent producer would.
type PurchaseGenerator struct {
	cl       *kgo.Client
	enc      codec.Encoder
	topic    string
	rate     int
	produced atomic.Int64
}

// NewPurchaseGenerator connects a producer and the registry.
func NewPurchaseGenerator(brokers []string, registryURL, topic string, perSecond int) (*PurchaseGenerator, error) {
	enc, err := codec.NewEncoder(codec.Options{Value: codec.FormatAvroConfluent, SchemaRegistry: codec.RegistryOptions{URL: registryURL}}, purchaseSchema)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("sluice-demo-purchases"), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &PurchaseGenerator{cl: cl, enc: enc, topic: topic, rate: perSecond}, nil
}

// Produced is how many events the broker acked.
func (g *PurchaseGenerator) Produced() int64 { return g.produced.Load() }

// Run produces until ctx is done.
func (g *PurchaseGenerator) Run(ctx context.Context) error {
	defer g.cl.Close()
	lim := rate.NewLimiter(rate.Limit(g.rate), max(1, g.rate/20))
	currencies := []string{"EUR", "USD", "GBP"}
	for i := 0; ; i++ {
		if err := lim.Wait(ctx); err != nil {
			return nil
		}
		fields := map[string]any{
			"event_id":     fmt.Sprintf("%08x-0000-4000-8000-%012x", rand.Uint32(), i),
			"event_type":   eventTypes[rand.N(len(eventTypes))],
			"user_id":      int64(1 + rand.N(500)),
			"sku":          fmt.Sprintf("SKU-%04d", rand.N(2000)),
			"quantity":     int32(1 + rand.N(5)),
			"price":        fmt.Sprintf("%d.%02d", 1+rand.N(300), rand.N(100)),
			"currency":     currencies[rand.N(3)],
			"requested_at": time.Now().UTC(),
		}
		if rand.N(5) == 0 {
			fields["coupon"] = "WELCOME10"
		}
		v, err := g.enc.Encode(ctx, g.topic, &connector.Record{Topic: g.topic, Fields: fields})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("encoding a demo purchase: %w", err)
		}
		g.cl.Produce(ctx, &kgo.Record{Topic: g.topic, Value: v}, func(_ *kgo.Record, err error) {
			if err == nil {
				g.produced.Add(1)
			}
		})
	}
}
