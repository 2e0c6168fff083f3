package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

	// Set when Kafka refused the dead letter for its size and it was cut
	// to fit (see Send).
	HeaderTruncated      = "sluice.dlq.truncated"       // "true"
	HeaderCut            = "sluice.dlq.cut"             // what was cut, e.g. "value truncated to 9800 of 2000000 bytes"
	HeaderOriginalSize   = "sluice.dlq.original_size"   // bytes of the original value
	HeaderOriginalSHA256 = "sluice.dlq.original_sha256" // hex SHA-256 of the original value
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
//
// A dead letter Kafka refuses for its size (MESSAGE_TOO_LARGE from the
// broker, or larger than the producer's max message bytes) is cut to fit
// rather than retried: its value is truncated to what the topic takes,
// then dropped, then the key and the original headers are dropped too,
// with headers giving the original value's size and SHA-256 (so it can be
// found in the source topic). A dead letter that cannot be produced for a
// reason retrying cannot fix (still too large, not authorized, an invalid
// topic) is a connector.Permanent error.
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
	err = d.cl.ProduceSync(ctx, kr).FirstErr()
	if tooLarge(err) {
		err = d.sendCut(ctx, kr, rec, err)
	}
	if err != nil {
		return produceError(topic, err)
	}
	return nil
}

// sendCut produces kr cut down until Kafka takes it; first is the error
// that refused it whole.
func (d *DeadLetter) sendCut(ctx context.Context, whole *kgo.Record, rec *connector.Record, first error) error {
	sum := sha256.Sum256(rec.Value)
	limit := d.maxMessageBytes(ctx, whole.Topic)
	cut := func(value, key []byte, headers []kgo.RecordHeader, what string) *kgo.Record {
		kr := &kgo.Record{Topic: whole.Topic, Key: key, Value: value}
		kr.Headers = append(slices.Clip(headers),
			kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")},
			kgo.RecordHeader{Key: HeaderCut, Value: []byte(what)},
			kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(rec.Value)))},
			kgo.RecordHeader{Key: HeaderOriginalSHA256, Value: []byte(hex.EncodeToString(sum[:]))},
		)
		return kr
	}
	var tries []*kgo.Record
	// The value truncated to what the limit leaves, then to a quarter of
	// that while the broker still refuses (its limit may be lower than we
	// could learn), down to 1 KiB.
	room := limit - recordOverhead(whole.Key, whole.Headers) - 512
	for n := min(room, len(rec.Value)-1); n >= 1<<10; n /= 4 {
		tries = append(tries, cut(rec.Value[:n], whole.Key, whole.Headers, fmt.Sprintf("value truncated to %d of %d bytes", n, len(rec.Value))))
	}
	tries = append(tries, cut(nil, whole.Key, whole.Headers, fmt.Sprintf("value of %d bytes dropped", len(rec.Value))))
	// Last: only our own headers, the error message shortened.
	var own []kgo.RecordHeader
	for _, h := range whole.Headers[len(rec.Headers):] {
		if h.Key == HeaderError && len(h.Value) > 1<<10 {
			h.Value = append(slices.Clip(h.Value[:1<<10]), "..."...)
		}
		own = append(own, h)
	}
	tries = append(tries, cut(nil, nil, own, fmt.Sprintf("value of %d bytes, key of %d bytes and %d original headers dropped", len(rec.Value), len(rec.Key), len(rec.Headers))))
	err := first
	for _, kr := range tries {
		if err = d.cl.ProduceSync(ctx, kr).FirstErr(); !tooLarge(err) {
			return err
		}
	}
	return connector.Permanent(fmt.Errorf("the dead letter is too large even with its value, key and headers cut: %w", err))
}

// tooLarge reports whether Kafka (or the producer, before sending) refused
// a record for its size.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// recordOverhead bounds the bytes a record batch of one record adds to its
// value: the batch header, the record's varints, the key and headers.
func recordOverhead(key []byte, headers []kgo.RecordHeader) int {
	n := 61 + 32 + len(key)
	for _, h := range headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// maxMessageBytes is the most a record batch to topic may hold: the
// producer's limit, lowered to the topic's max.message.bytes when the
// cluster says.
func (d *DeadLetter) maxMessageBytes(ctx context.Context, topic string) int {
	limit := 1000012 // kgo's default ProducerBatchMaxBytes
	if v, ok := d.cl.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		limit = int(v)
	}
	cfgs, err := d.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return limit
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
				limit = min(limit, n)
			}
		}
	}
	return limit
}

// produceError says which topic a produce failed for; errors Kafka says
// retrying cannot fix (authorization, an invalid topic or record, a
// policy) are permanent.
func produceError(topic string, err error) error {
	err = fmt.Errorf("producing to dead-letter topic %s: %w", topic, err)
	var ke *kerr.Error
	if !connector.IsPermanent(err) && errors.As(err, &ke) && !ke.Retriable {
		return connector.Permanent(err)
	}
	return err
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
	if err == nil {
		err = resp.Err
	}
	var ke *kerr.Error
	switch {
	case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		// Not allowed to create topics: it may have been created for us;
		// producing tells.
	case errors.As(err, &ke) && !ke.Retriable:
		// An invalid name, a policy, a replication factor the cluster
		// cannot give: waiting does not help.
		return connector.Permanent(fmt.Errorf("creating dead-letter topic %s: %w", topic, err))
	default:
		return fmt.Errorf("creating dead-letter topic %s: %w", topic, err)
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
