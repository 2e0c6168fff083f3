package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// Sink produces every record of a batch and returns only when all are
// acked by the brokers (with acks: all, by every in-sync replica).
type Sink struct {
	cl      *kgo.Client
	topic   *connector.NameTemplate
	manual  bool
	encoder connector.Encoder // nil: write the source bytes as they are

	exactlyOnce bool
	txn         txnOptions

	brokers []string
	// create, when set, creates rendered topics that do not exist on
	// first use; ready remembers the rendered topics known to exist.
	create  *config.CreateTopic
	readyMu sync.Mutex
	ready   map[string]bool
}

// SinkOptions are what the sink needs besides its config.
type SinkOptions struct {
	// Encoder, when not nil, re-encodes each record's decoded fields as
	// the value.
	Encoder  connector.Encoder
	Logger   *slog.Logger
	Pipeline string
	// ExactlyOnce writes each batch in a transaction with its source
	// offsets (the source must be Kafka, opened with ExactlyOnce too).
	ExactlyOnce bool
}

// NewSink connects a producer.
func NewSink(ctx context.Context, cfg config.KafkaSink, o SinkOptions) (*Sink, error) {
	log, enc := o.Logger, o.Encoder
	topic, err := connector.ParseNameTemplate("sink.kafka.topic", cfg.Topic)
	if err != nil {
		return nil, err
	}
	opts, err := ProducerOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	var txn txnOptions
	if o.ExactlyOnce {
		prefix := cfg.TransactionalIDPrefix
		if prefix == "" {
			prefix = "sluice-" + o.Pipeline
		}
		txn = newTxnOptions(o.Pipeline, cfg, prefix, log)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating Kafka producer: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connecting to Kafka brokers %v: %w", cfg.Brokers, ExplainAuth(cl, cfg.KafkaConn, err))
	}
	if topic.IsConstant() {
		// A static topic that does not exist would fail every batch with
		// UNKNOWN_TOPIC_OR_PARTITION, retried until someone noticed: check
		// (or create) it now, so the pipeline does not start.
		name := topic.String()
		if why := topicNameProblem(name); why != "" {
			cl.Close()
			return nil, connector.Permanent(fmt.Errorf("sink.kafka.topic %q %s", name, why))
		}
		if err := ensureTopic(pingCtx, cl, cfg.Brokers, name, cfg.CreateTopic); err != nil {
			cl.Close()
			return nil, fmt.Errorf("sink.kafka.topic: %w", err)
		}
	}
	return &Sink{cl: cl, topic: topic, manual: cfg.Partitioner == "manual", encoder: enc, exactlyOnce: o.ExactlyOnce, txn: txn,
		brokers: cfg.Brokers, create: cfg.CreateTopic, ready: map[string]bool{}}, nil
}

// ProducerOptions maps the sink's settings to franz-go producer options.
func ProducerOptions(cfg config.KafkaSink, log *slog.Logger) ([]kgo.Opt, error) {
	opts, err := ConnOptions(cfg.KafkaConn, log)
	if err != nil {
		return nil, err
	}
	clientID := cfg.ClientID
	if clientID == "" {
		clientID = "sluice-producer"
	}
	opts = append(opts,
		kgo.ClientID(clientID),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(int32(cfg.BatchBytes)),
		// Room for a whole engine batch, so Produce rarely blocks. No
		// RecordDeliveryTimeout: franz-go measures it from the record's
		// timestamp, which we copy from the source, so old records would
		// time out at once; the write context bounds a produce instead.
		kgo.MaxBufferedRecords(100000),
		// Like a Java producer: a topic that does not exist is created
		// if the brokers do that on demand (auto.create.topics.enable).
		kgo.AllowAutoTopicCreation(),
		// The sink does not know its pipeline: labelled by client.id.
		kgo.WithHooks(metrics.KafkaClientHooks("", "producer:"+clientID)...),
	)
	switch cfg.Acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if cfg.Idempotent != nil && !*cfg.Idempotent || cfg.Acks == "1" || cfg.Acks == "0" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	switch cfg.Compression {
	case "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4", "":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		return nil, fmt.Errorf("sink.kafka.compression %q is not supported", cfg.Compression)
	}
	switch cfg.Partitioner {
	case "round_robin":
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	case "manual":
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	// murmur2 (default): franz-go's default partitioner hashes keys with
	// murmur2 exactly like the Java client, so keys land where Java puts them.
	return opts, nil
}

// Write produces batch and waits for every ack. Records the broker rejects
// for their content (too large, invalid) come back in a *BatchError; any
// other failure fails the whole write, which the engine retries (records
// already acked are then written again: at least once). With delivery:
// exactly_once the batch is one Kafka transaction with its source offsets
// (writeExactlyOnce).
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	if s.exactlyOnce {
		return s.writeExactlyOnce(ctx, batch, 1)
	}
	bad, _, err := s.produce(ctx, s.cl, batch, 1)
	if err != nil {
		return err
	}
	return connector.Rejected(bad)
}

// SpreadsBatches is true with delivery: exactly_once: a batch commits its
// source offsets in its transaction, so with parallelism the engine hands
// over whole batches and WriteSpread spreads them over the workers.
func (s *Sink) SpreadsBatches() bool { return s.exactlyOnce }

// WriteSpread writes batch as Write does, in one transaction with
// exactly-once: the records of each of workers (Record.Slot modulo
// workers) are rendered and encoded on a goroutine of their own, then all
// produced in batch order through the consumer's one transactional
// producer, so a key's records keep their order. The transaction ends,
// with the source offsets after the batch, once every record is acked;
// any failure aborts it all.
func (s *Sink) WriteSpread(ctx context.Context, batch []*connector.Record, workers int) error {
	if !s.exactlyOnce {
		return s.Write(ctx, batch)
	}
	return s.writeExactlyOnce(ctx, batch, workers)
}

// produce produces recs through cl and waits for every ack. bad lists the
// records that cannot be written (a topic or value they cannot be encoded
// to, or a broker refusal); refused says whether any of them was sent and
// refused by the broker (which leaves a transaction abortable only).
//
// With workers > 1 the records are turned into Kafka records (topic
// rendered, value encoded) on that many goroutines, the records of a slot
// (Record.Slot modulo workers) on one of them; they are then handed to the
// producer in the order of recs by one loop, so a transaction's records
// leave in as few produce requests as with one worker.
func (s *Sink) produce(ctx context.Context, cl *kgo.Client, recs []*connector.Record, workers int) (bad []*connector.RecordError, refused bool, err error) {
	krs := make([]kgo.Record, len(recs))
	bad, err = s.toKafkaAll(ctx, recs, krs, workers)
	if err != nil {
		return nil, false, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	promise := func(kr *kgo.Record, err error) {
		defer wg.Done()
		if err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("topic %q does not exist on brokers %s (create it, or set sink.kafka.create_topic): %w", kr.Topic, strings.Join(s.brokers, ","), err)
		} else {
			err = fmt.Errorf("topic %q: %w", kr.Topic, err)
		}
		if isRecordProblem(err) {
			bad = append(bad, &connector.RecordError{Record: recs[indexOf(krs, kr)], Reason: "kafka-produce", Err: err})
			refused = true
			return
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := range krs {
		if krs[i].Topic == "" {
			continue // bad
		}
		wg.Add(1)
		cl.Produce(ctx, &krs[i], promise)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, false, fmt.Errorf("producing: %w", firstErr)
	}
	return bad, refused, nil
}

// toKafkaAll fills krs[i] for each recs[i] that can be written, on
// workers goroutines by slot; a record that cannot be is returned in bad
// and its krs[i].Topic left empty. An error (the registry down, a schema
// refused) means nothing of recs may be produced.
func (s *Sink) toKafkaAll(ctx context.Context, recs []*connector.Record, krs []kgo.Record, workers int) ([]*connector.RecordError, error) {
	var (
		mu  sync.Mutex
		bad []*connector.RecordError
	)
	convert := func(idx []int) error {
		for _, i := range idx {
			re, err := s.toKafka(ctx, recs[i], &krs[i])
			if err != nil {
				return err
			}
			if re != nil {
				krs[i].Topic = ""
				mu.Lock()
				bad = append(bad, re)
				mu.Unlock()
			}
		}
		return nil
	}
	parts := make([][]int, max(1, workers))
	for i, rec := range recs {
		w := 0
		if workers > 1 {
			w = rec.Slot % workers
		}
		parts[w] = append(parts[w], i)
	}
	var g errgroup.Group
	for _, idx := range parts[1:] {
		if len(idx) > 0 {
			g.Go(func() error { return convert(idx) })
		}
	}
	err := convert(parts[0])
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	return bad, err
}

// toKafka fills kr for rec: its rendered topic, and its value encoded
// when the sink has an encoder. A *RecordError is rec's own problem.
func (s *Sink) toKafka(ctx context.Context, rec *connector.Record, kr *kgo.Record) (*connector.RecordError, error) {
	topic, err := s.topic.Render(rec)
	if err != nil {
		var re *connector.RecordError
		if !errors.As(err, &re) {
			return nil, fmt.Errorf("rendering the topic: %w", err)
		}
		return re, nil
	}
	if !s.topic.IsConstant() {
		if why := topicNameProblem(topic); why != "" {
			// Retrying cannot make the name valid: the record's problem.
			return &connector.RecordError{Record: rec, Reason: "topic", Err: fmt.Errorf("rendered topic %q %s", topic, why)}, nil
		}
		if err := s.ensureRendered(ctx, topic); err != nil {
			return nil, err
		}
	}
	value := rec.Value
	if s.encoder != nil {
		value, err = s.encoder.Encode(ctx, topic, rec)
		var re *connector.RecordError
		switch {
		case errors.As(err, &re):
			return re, nil
		case err != nil:
			// Transient (registry down) or permanent (schema refused):
			// nothing of this batch may count as written.
			return nil, fmt.Errorf("encoding value for %s: %w", topic, err)
		}
	}
	kr.Topic = topic
	kr.Key = rec.Key
	kr.Value = value
	kr.Timestamp = rec.Timestamp
	if s.manual {
		kr.Partition = rec.Partition
	}
	if len(rec.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(rec.Headers))
		for j, h := range rec.Headers {
			kr.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return nil, nil
}

// ensureRendered creates a rendered topic on its first use when
// create_topic is set; without it, the producer's own metadata request
// asks the brokers to create it.
func (s *Sink) ensureRendered(ctx context.Context, topic string) error {
	if s.create == nil {
		return nil
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.ready[topic] {
		return nil
	}
	if err := ensureTopic(ctx, s.cl, s.brokers, topic, s.create); err != nil {
		return err
	}
	s.ready[topic] = true
	return nil
}

// isRecordProblem: errors that retrying the same record cannot fix.
func isRecordProblem(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage) ||
		errors.Is(err, kerr.InvalidTopicException)
}

// indexOf finds kr in krs; only used on the rare rejected record.
func indexOf(krs []kgo.Record, kr *kgo.Record) int {
	for i := range krs {
		if &krs[i] == kr {
			return i
		}
	}
	return 0
}

// Close flushes and disconnects.
func (s *Sink) Close(ctx context.Context) error {
	err := s.cl.Flush(ctx)
	s.cl.Close()
	return err
}
