package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dead-letter headers. The original key, value and headers are kept as they
// were; these say why and where from.
const (
	HeaderReason    = "sluice.dlq.reason"    // short kind: json, avro-decode, template, ...
	HeaderError     = "sluice.dlq.error"     // the full message
	HeaderTopic     = "sluice.dlq.topic"     // original topic
	HeaderPartition = "sluice.dlq.partition" // original partition
	HeaderOffset    = "sluice.dlq.offset"    // original offset
	HeaderTimestamp = "sluice.dlq.timestamp" // original timestamp, RFC 3339 with ms
	HeaderPipeline  = "sluice.dlq.pipeline"
)

// DeadLetter writes bad records to a Kafka topic (a template, by default
// "{{.Topic}}.dlq"), creating it on first use.
type DeadLetter struct {
	cl       *kgo.Client
	adm      *kadm.Client
	topic    *connector.NameTemplate
	pipeline string

	mu      sync.Mutex
	created map[string]bool
}

// NewDeadLetter connects a producer for the dead-letter topic.
func NewDeadLetter(ctx context.Context, conn config.KafkaConn, topic, pipeline string, log *slog.Logger) (*DeadLetter, error) {
	t, err := connector.ParseNameTemplate("dlq.topic", topic)
	if err != nil {
		return nil, err
	}
	opts, err := ConnOptions(conn, log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ClientID("sluice-dlq-"+pipeline), kgo.RequiredAcks(kgo.AllISRAcks()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating dead-letter producer: %w", err)
	}
	return &DeadLetter{cl: cl, adm: kadm.NewClient(cl), topic: t, pipeline: pipeline, created: map[string]bool{}}, nil
}

// Send produces rec with the reason headers and waits for the ack.
func (d *DeadLetter) Send(ctx context.Context, rec *connector.Record, reason error) error {
	topic, err := d.topic.Render(rec)
	if err != nil {
		topic = rec.Topic + ".dlq"
	}
	if err := d.ensureTopic(ctx, topic); err != nil {
		return err
	}
	kind := "invalid"
	var re *connector.RecordError
	if errors.As(reason, &re) && re.Reason != "" {
		kind = re.Reason
	}
	kr := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	kr.Headers = append(kr.Headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(kind)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(reason.Error())},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(rec.Partition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		kgo.RecordHeader{Key: HeaderTimestamp, Value: []byte(rec.Timestamp.UTC().Format(time.RFC3339Nano))},
		kgo.RecordHeader{Key: HeaderPipeline, Value: []byte(d.pipeline)},
	)
	if err := d.cl.ProduceSync(ctx, kr).FirstErr(); err != nil {
		return fmt.Errorf("producing to dead-letter topic %s: %w", topic, err)
	}
	return nil
}

// ensureTopic creates the dead-letter topic once (1 partition, the
// cluster's default replication); one that exists already is fine.
func (d *DeadLetter) ensureTopic(ctx context.Context, topic string) error {
	d.mu.Lock()
	done := d.created[topic]
	d.mu.Unlock()
	if done {
		return nil
	}
	resp, err := d.adm.CreateTopic(ctx, 1, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating dead-letter topic %s: %w", topic, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating dead-letter topic %s: %w", topic, resp.Err)
	}
	d.mu.Lock()
	d.created[topic] = true
	d.mu.Unlock()
	return nil
}

// Close flushes and disconnects.
func (d *DeadLetter) Close(ctx context.Context) error {
	err := d.cl.Flush(ctx)
	d.cl.Close()
	return err
}
