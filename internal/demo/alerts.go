package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"golang.org/x/time/rate"

	pubsubconn "github.com/sluice-dev/sluice/internal/connector/pubsub"
)

// The demo's Pub/Sub side: device alerts published with the device as
// ordering key, read by the alerts-from-pubsub pipeline into Kafka.
const (
	alertsProject      = "demo"
	alertsTopic        = "alerts"
	alertsSubscription = "alerts-sluice"
	alertsKafkaTopic   = "demo.alerts"
)

// AlertPublisher publishes alerts to the Pub/Sub emulator.
type AlertPublisher struct {
	client    *pubsub.Client
	pub       *pubsub.Publisher
	rate      int
	published atomic.Int64
}

// NewAlertPublisher creates the topic and the pipeline's (ordered)
// subscription in the emulator at addr.
func NewAlertPublisher(ctx context.Context, addr string, perSecond int) (*AlertPublisher, error) {
	opts, err := pubsubconn.ClientOptions(addr, "", "")
	if err != nil {
		return nil, err
	}
	client, err := pubsub.NewClient(ctx, alertsProject, opts...)
	if err != nil {
		return nil, err
	}
	topic := fmt.Sprintf("projects/%s/topics/%s", alertsProject, alertsTopic)
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		client.Close()
		return nil, fmt.Errorf("creating the demo's Pub/Sub topic: %w", err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  fmt.Sprintf("projects/%s/subscriptions/%s", alertsProject, alertsSubscription),
		Topic: topic, EnableMessageOrdering: true, AckDeadlineSeconds: 30,
	}); err != nil {
		client.Close()
		return nil, fmt.Errorf("creating the demo's Pub/Sub subscription: %w", err)
	}
	pub := client.Publisher(alertsTopic)
	pub.EnableMessageOrdering = true
	return &AlertPublisher{client: client, pub: pub, rate: perSecond}, nil
}

// Published is how many alerts Pub/Sub accepted.
func (a *AlertPublisher) Published() int64 { return a.published.Load() }

// Run publishes until ctx is done.
func (a *AlertPublisher) Run(ctx context.Context) error {
	defer a.client.Close()
	defer a.pub.Stop()
	lim := rate.NewLimiter(rate.Limit(a.rate), max(1, a.rate/10))
	severities := []string{"info", "info", "info", "warning", "critical"}
	for {
		if err := lim.Wait(ctx); err != nil {
			return nil
		}
		device := fmt.Sprintf("sensor-%03d", rand.N(50))
		severity := severities[rand.N(len(severities))]
		data, _ := json.Marshal(map[string]any{"device": device, "severity": severity,
			"temperature": 20 + rand.Float64()*60, "at": time.Now().UTC().Format(time.RFC3339Nano)})
		res := a.pub.Publish(ctx, &pubsub.Message{Data: data, OrderingKey: device,
			Attributes: map[string]string{"severity": severity, "device": device}})
		go func() {
			if _, err := res.Get(context.WithoutCancel(ctx)); err == nil {
				a.published.Add(1)
			}
		}()
	}
}
