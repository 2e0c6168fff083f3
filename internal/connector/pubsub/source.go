// Package pubsub is the Google Pub/Sub source: each reader is a
// subscriber of one subscription, and a message is acked to Pub/Sub only
// when the engine acks its record (the sink made it durable, or on_error
// routed it). Messages pass through byte for byte: data is the value,
// attributes the headers, and the key is the ordering key (or what
// key_from says).
//
// Delivery is at least once: a message whose record was not acked when
// its reader closes is nacked, and Pub/Sub redelivers it; one whose ack
// was lost (a crash between the sink's write and the ack) is delivered
// again too.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/gcp"
)

// Source reads one subscription. Build it with NewSource; Close it when
// the pipeline is done.
type Source struct {
	cfg    config.PubSubSource
	client *pubsub.Client
	// topic is what records carry as Topic: the ID of the subscription's
	// topic (the subscription's ID when the topic cannot be read).
	topic string
	log   *slog.Logger
	// seq numbers records in the order they arrive (Offset): Pub/Sub has
	// no offsets, but logs and dead-letter headers need something.
	seq atomic.Int64
	// health follows the server through every call of the client.
	health *serverHealth
	// readers counts the open readers: the server is probed only while
	// the source reads.
	readers   atomic.Int32
	stopProbe context.CancelFunc
	probeDone chan struct{}
}

// SourceOptions are what NewSource needs besides the configuration.
type SourceOptions struct {
	Pipeline string // labels the source's metrics
	Logger   *slog.Logger
}

// NewSource connects and checks that the subscription exists.
func NewSource(ctx context.Context, cfg config.PubSubSource, o SourceOptions) (*Source, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts, err := ClientOptions(cfg.EmulatorHost, cfg.CredentialsFile, "source.pubsub.credentials_file")
	if err != nil {
		return nil, connector.Permanent(err)
	}
	path := cfg.SubscriptionPath()
	health := newServerHealth(o.Pipeline, path, gcp.Secrets(cfg.CredentialsFile))
	opts = append(opts, option.WithGRPCDialOption(grpc.WithStatsHandler(health)))
	project := cfg.Project
	if p, _, ok := strings.Cut(strings.TrimPrefix(path, "projects/"), "/"); ok {
		project = p
	}
	client, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	s := &Source{cfg: cfg, client: client, log: log.With("source", "pubsub"), health: health}
	sub, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: path})
	switch status.Code(err) {
	case codes.OK:
		s.topic = path[strings.LastIndexByte(path, '/')+1:]
		if t := sub.GetTopic(); t != "" && t != "_deleted-topic_" {
			s.topic = t[strings.LastIndexByte(t, '/')+1:]
		}
	case codes.NotFound:
		client.Close()
		return nil, connector.Permanent(fmt.Errorf("pubsub subscription %s does not exist", path))
	case codes.PermissionDenied:
		// Consuming needs only pubsub.subscriber; reading the
		// subscription's metadata needs more. Go on without the topic.
		s.topic = path[strings.LastIndexByte(path, '/')+1:]
		s.log.Warn("cannot read the subscription's topic (permission denied); records carry the subscription's name as their topic", "subscription", path)
	default:
		client.Close()
		return nil, fmt.Errorf("reading pubsub subscription %s: %w", path, err)
	}
	probeCtx, stop := context.WithCancel(context.Background())
	s.stopProbe, s.probeDone = stop, make(chan struct{})
	go func() {
		defer close(s.probeDone)
		s.probe(probeCtx)
	}()
	return s, nil
}

// ClientOptions are the options to reach Pub/Sub: an emulator without TLS
// or credentials, or Google's service with a credentials file or the
// application default credentials.
func ClientOptions(emulatorHost, credentialsFile, field string) ([]option.ClientOption, error) {
	if emulatorHost != "" {
		return []option.ClientOption{
			option.WithEndpoint(emulatorHost),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			option.WithTelemetryDisabled(),
		}, nil
	}
	return gcp.Credentials(credentialsFile, field)
}

// Describe implements connector.Describer.
func (s *Source) Describe() string { return "Pub/Sub subscription " + s.cfg.SubscriptionPath() }

// Topic is what records of this source carry as their topic.
func (s *Source) Topic() string { return s.topic }

// SourceHealth implements connector.HealthReporter: whether the Pub/Sub
// server answers and serves the subscription.
func (s *Source) SourceHealth() connector.SourceHealth { return s.health.snapshot() }

// Close closes the client, after every reader is closed.
func (s *Source) Close(context.Context) error {
	s.stopProbe()
	<-s.probeDone
	return s.client.Close()
}

// OpenReader implements connector.Source: one subscriber with its own
// streaming pulls and flow control.
func (s *Source) OpenReader(_ context.Context, member string) (connector.Reader, error) {
	sub := s.client.Subscriber(s.cfg.SubscriptionPath())
	sub.ReceiveSettings.NumGoroutines = s.cfg.Streams
	sub.ReceiveSettings.MaxOutstandingMessages = s.cfg.MaxOutstandingMessages
	sub.ReceiveSettings.MaxOutstandingBytes = s.cfg.MaxOutstandingBytes
	// Held messages are leased for at most this at a time: if the process
	// dies, Pub/Sub redelivers them within it.
	sub.ReceiveSettings.MaxDurationPerAckExtension = s.cfg.MaxAckExtension
	// Whatever is still outstanding when the reader closes will not be
	// acked by us: hand it back at once rather than at its deadline.
	sub.ReceiveSettings.ShutdownOptions = &pubsub.ShutdownOptions{Behavior: pubsub.ShutdownBehaviorNackImmediately, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{src: s, member: member, sub: sub, cancel: cancel, done: make(chan struct{}), stopped: make(chan error, 1),
		out: make(chan *connector.Record, s.cfg.MaxOutstandingMessages), pending: map[*pubsub.Message]struct{}{}}
	s.readers.Add(1)
	go r.receive(ctx)
	return r, nil
}

// record turns a message into a record.
func (s *Source) record(m *pubsub.Message) *connector.Record {
	rec := &connector.Record{Topic: s.topic, Offset: s.seq.Add(1) - 1, Timestamp: m.PublishTime, TimestampType: connector.TimestampPublishTime, Value: m.Data, Origin: m}
	if rec.Value == nil {
		// Pub/Sub has no null: a message's data is bytes, maybe none.
		// Passed on as null it would be a delete marker on a compacted
		// Kafka topic; byte for byte means 0 bytes.
		rec.Value = []byte{}
	}
	switch s.cfg.KeyFrom {
	case config.KeyFromOrderingKey:
		if m.OrderingKey != "" {
			rec.Key = []byte(m.OrderingKey)
		}
	case config.KeyFromMessageID:
		rec.Key = []byte(m.ID)
	case config.KeyFromNone:
	default:
		if v, ok := m.Attributes[s.cfg.KeyAttribute()]; ok {
			rec.Key = []byte(v)
		}
	}
	if len(m.Attributes) > 0 {
		rec.Headers = make([]connector.Header, 0, len(m.Attributes))
		for _, k := range sortedKeys(m.Attributes) {
			rec.Headers = append(rec.Headers, connector.Header{Key: k, Value: []byte(m.Attributes[k])})
		}
	}
	return rec
}

var errClosed = errors.New("pubsub reader closed")
