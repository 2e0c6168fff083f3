package pubsub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Sink publishes records to Pub/Sub: the value is the message data byte
// for byte, headers become attributes (the last of repeated keys wins),
// and the key the ordering key. Write returns once Pub/Sub has accepted
// every message of the batch.
type Sink struct {
	client   *pubsub.Client
	project  string
	topic    *connector.NameTemplate
	ordering bool
	log      *slog.Logger

	mu   sync.Mutex
	pubs map[string]*pubsub.Publisher // by topic path
}

// maxPublishers bounds the publishers kept for templated topics; past it
// the least recently created is stopped (its messages are flushed first).
const maxPublishers = 256

// NewSink connects; a constant topic must exist.
func NewSink(ctx context.Context, cfg config.PubSubSink, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.Default()
	}
	topic, err := connector.ParseNameTemplate("sink.pubsub.topic", cfg.Topic)
	if err != nil {
		return nil, err
	}
	opts, err := ClientOptions(cfg.EmulatorHost, cfg.CredentialsFile, "sink.pubsub.credentials_file")
	if err != nil {
		return nil, connector.Permanent(err)
	}
	project := cfg.Project
	if p, _, ok := strings.Cut(strings.TrimPrefix(cfg.Topic, "projects/"), "/"); ok && strings.HasPrefix(cfg.Topic, "projects/") {
		project = p
	}
	client, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	s := &Sink{client: client, project: project, topic: topic, ordering: cfg.OrderingKey == "key",
		log: log.With("sink", "pubsub"), pubs: map[string]*pubsub.Publisher{}}
	if topic.IsConstant() {
		path := s.topicPath(cfg.Topic)
		if _, err := client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: path}); status.Code(err) == codes.NotFound {
			client.Close()
			return nil, connector.Permanent(fmt.Errorf("pubsub topic %s does not exist", path))
		}
	}
	return s, nil
}

func (s *Sink) topicPath(t string) string {
	if strings.HasPrefix(t, "projects/") {
		return t
	}
	return fmt.Sprintf("projects/%s/topics/%s", s.project, t)
}

func (s *Sink) publisher(topic string) *pubsub.Publisher {
	path := s.topicPath(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pubs[path]; ok {
		return p
	}
	if len(s.pubs) >= maxPublishers {
		for k, p := range s.pubs { // any one: templated topics rarely exceed the bound
			go p.Stop()
			delete(s.pubs, k)
			break
		}
	}
	p := s.client.Publisher(path)
	p.EnableMessageOrdering = s.ordering
	s.pubs[path] = p
	return p
}

// Write implements connector.Sink. A record Pub/Sub cannot take (an
// attribute or ordering key that is not UTF-8, an empty message, a message
// the service refuses as invalid) comes back in a *BatchError; any other
// failure leaves the messages it hit not written, and only they are
// published again.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	type sent struct {
		res *pubsub.PublishResult
		pub *pubsub.Publisher
		key string
		rec *connector.Record
	}
	var pending []sent
	var bad []*connector.RecordError
	reject := func(rec *connector.Record, reason string, err error) {
		bad = append(bad, &connector.RecordError{Record: rec, Reason: reason, Err: err})
	}
	for _, rec := range batch {
		topic, err := s.topic.Render(rec)
		if err != nil {
			var re *connector.RecordError
			if errors.As(err, &re) {
				bad = append(bad, re)
				continue
			}
			return err
		}
		m, err := s.message(rec)
		if err != nil {
			reject(rec, "pubsub-message", err)
			continue
		}
		p := s.publisher(topic)
		pending = append(pending, sent{res: p.Publish(ctx, m), pub: p, key: m.OrderingKey, rec: rec})
	}
	var first error
	var notWritten []*connector.Record
	for _, ps := range pending {
		if _, err := ps.res.Get(ctx); err != nil {
			if ps.key != "" {
				// An ordering key pauses after a failure; the retry of the
				// batch publishes its messages again, in order.
				ps.pub.ResumePublish(ps.key)
			}
			switch status.Code(err) {
			case codes.InvalidArgument:
				reject(ps.rec, "pubsub-publish", fmt.Errorf("pubsub refused the message: %w", err))
			default:
				first = cmp.Or(first, err)
				notWritten = append(notWritten, ps.rec)
			}
		}
	}
	if first != nil {
		// Messages the service accepted are durable; only the others are
		// published again (an ordering key's messages after a failed one
		// fail too, so their order is kept).
		return &connector.BatchError{Failed: bad, NotWritten: notWritten, Cause: fmt.Errorf("publishing to pubsub: %w", first)}
	}
	return connector.Rejected(bad)
}

// message turns a record into a message, or says why it cannot be one.
func (s *Sink) message(rec *connector.Record) (*pubsub.Message, error) {
	m := &pubsub.Message{Data: rec.Value}
	if len(rec.Headers) > 0 {
		m.Attributes = make(map[string]string, len(rec.Headers))
		for _, h := range rec.Headers {
			if !utf8.ValidString(h.Key) || !utf8.Valid(h.Value) {
				return nil, fmt.Errorf("offset %d: header %q is not UTF-8 text, which a Pub/Sub attribute must be", rec.Offset, h.Key)
			}
			m.Attributes[h.Key] = string(h.Value)
		}
	}
	if len(m.Data) == 0 && len(m.Attributes) == 0 {
		return nil, fmt.Errorf("offset %d: no value and no headers: Pub/Sub does not take an empty message", rec.Offset)
	}
	if s.ordering && len(rec.Key) > 0 {
		if !utf8.Valid(rec.Key) {
			return nil, fmt.Errorf("offset %d: the key is not UTF-8 text, which a Pub/Sub ordering key must be (set ordering_key: none)", rec.Offset)
		}
		m.OrderingKey = string(rec.Key)
	}
	return m, nil
}

// Close flushes and stops every publisher, then the client.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	pubs := s.pubs
	s.pubs = map[string]*pubsub.Publisher{}
	s.mu.Unlock()
	for _, p := range pubs {
		p.Stop()
	}
	return s.client.Close()
}
