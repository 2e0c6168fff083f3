// Package loadgen generates Kafka load and watches its effect: Produce
// writes records at a configured rate, size, key cardinality and number of
// connections and measures every record's latency to its ack; Monitor
// samples topics' produce rates and consumer groups' lag; a Report draws
// either as a self-contained HTML page.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// ProduceOptions configure a load run. The zero value of each optional
// field is the default stated on it.
type ProduceOptions struct {
	Brokers []string
	Topic   string
	// Profile is the rate over time; the zero value is steady and
	// unlimited.
	Profile Profile
	// Size is the value size in bytes (default 100); JSON values are about
	// this size, never smaller than their fields.
	Size int
	// Keys is the number of distinct keys, used in turn (0: no key, so
	// the client spreads records over partitions).
	Keys int64
	// Connections is the number of independent producer clients, each
	// with its own connections and batches (default 1).
	Connections int
	// Duration and Records bound the run; it stops at whichever comes
	// first. At least one is required.
	Duration time.Duration
	Records  int64
	// Format of values: "bytes" (random, default), "json" or "avro"
	// (Confluent wire format, with AvroSchema registered at RegistryURL).
	Format string
	// AvroSchema is the schema text of --format avro (default
	// ShopEventSchema); values are random, as the schema allows, with a
	// top-level long "id" set to the record's sequence number.
	AvroSchema string
	// RegistryURL is the schema registry --format avro registers with.
	RegistryURL string
	// SchemaEvolve switches --format avro to the next version of the
	// schema (EvolvedField added) halfway: after half of Records, or of
	// Duration when only that bounds the run.
	SchemaEvolve bool
	// Acks is "all" (default), "1" or "0" (acks=0 counts a record acked
	// once written to the socket).
	Acks string
	// Compression is "none" (default), "gzip", "snappy", "lz4" or "zstd".
	Compression string
	// Linger is the producer's linger.ms (default 5ms, Kafka 4's default).
	Linger time.Duration
	// BatchMaxBytes caps a batch (batch.size; default 1 MiB).
	BatchMaxBytes int32
	// CreateTopic creates Topic with Partitions (default 6) and
	// ReplicationFactor (default -1, the broker's) when it does not exist.
	CreateTopic       bool
	Partitions        int32
	ReplicationFactor int16
	// SampleEvery is the width of one point of the time series (default 1s).
	SampleEvery time.Duration
	// FlushTimeout bounds the wait for acks after the last record was
	// produced, or after ctx ended (default 30s). Records not acked by
	// then are errors.
	FlushTimeout time.Duration
	// OnSample, if set, is called after each sample from one goroutine.
	OnSample func(ProduceSample)
	// Control, if set, changes the rate while the run goes on (PUT /rate
	// on --control); its changes are in the result.
	Control *RateControl
	// ClientOptions are added to every producer client (TLS, SASL, ...).
	ClientOptions []kgo.Opt
}

func (o *ProduceOptions) setDefaults() {
	if o.Size == 0 {
		o.Size = 100
	}
	if o.Connections == 0 {
		o.Connections = 1
	}
	if o.Format == "" {
		o.Format = FormatBytes
	}
	if o.Acks == "" {
		o.Acks = "all"
	}
	if o.Compression == "" {
		o.Compression = "none"
	}
	if o.Linger == 0 {
		o.Linger = 5 * time.Millisecond
	}
	if o.Partitions == 0 {
		o.Partitions = 6
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = time.Second
	}
	if o.FlushTimeout == 0 {
		o.FlushTimeout = 30 * time.Second
	}
	if o.Profile.Kind == "" {
		o.Profile.Kind = ProfileSteady
	}
}

// Validate returns every problem at once, named by its command-line flag.
func (o *ProduceOptions) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if len(o.Brokers) == 0 {
		bad("brokers", "is required")
	}
	if o.Topic == "" {
		bad("topic", "is required")
	}
	if o.Duration <= 0 && o.Records <= 0 {
		bad("duration", "give --duration, --records or both")
	}
	if o.Duration < 0 {
		bad("duration", "must be >= 0")
	}
	if o.Records < 0 {
		bad("records", "must be >= 0")
	}
	if o.Profile.Rate < 0 {
		bad("rate", "must be >= 0")
	}
	if o.Size < 0 {
		bad("size", "must be >= 0")
	}
	if o.Keys < 0 {
		bad("keys", "must be >= 0")
	}
	if o.Connections < 1 || o.Connections > 1000 {
		bad("connections", "must be 1 to 1000")
	}
	switch o.Format {
	case FormatBytes, FormatJSON:
	case FormatAvro:
		if o.RegistryURL == "" {
			bad("registry-url", "is required with --format avro")
		}
	default:
		bad("format", "%q: use bytes, json or avro", o.Format)
	}
	if o.SchemaEvolve && o.Format != FormatAvro {
		bad("schema-evolve", "only with --format avro")
	}
	if _, err := acksOption(o.Acks); err != nil {
		bad("acks", "%v", err)
	}
	if _, err := compressionOption(o.Compression); err != nil {
		bad("compression", "%v", err)
	}
	if o.Partitions < 1 {
		bad("partitions", "must be >= 1")
	}
	switch o.Profile.Kind {
	case ProfileSteady:
	case ProfileBursty:
		if o.Profile.BurstRate < 0 {
			bad("burst-rate", "must be >= 0")
		}
		if o.Profile.BurstDuration <= 0 {
			bad("burst-duration", "must be > 0")
		}
		if o.Profile.BurstEvery < o.Profile.BurstDuration {
			bad("burst-every", "must be at least --burst-duration (%v)", o.Profile.BurstDuration)
		}
	case ProfileSchedule:
		if len(o.Profile.Points) == 0 {
			bad("rate-schedule", "is required with --profile schedule")
		}
	default:
		bad("profile", "%q: use steady, bursty or schedule", o.Profile.Kind)
	}
	return errors.Join(errs...)
}

// ProduceSample is one point of a run's time series: what was acked in
// the interval ending at Elapsed, and the latency of those records.
type ProduceSample struct {
	Elapsed  time.Duration
	Records  int64 // acked in this interval
	Bytes    int64
	Errors   int64
	P50, P99 time.Duration
	// TotalRecords is acked since the start, for progress display.
	TotalRecords int64
}

// ProduceResult is a run's summary. Records and Bytes count acked records
// (key plus value); Errors counts records that failed or were not acked
// before the flush timeout.
type ProduceResult struct {
	Options            ProduceOptions
	Started            time.Time // when the first record could be produced
	Records, Bytes     int64
	Errors             int64
	ErrorCounts        map[string]int64 // by message, at most maxErrorKinds
	Elapsed            time.Duration
	P50, P95, P99, Max time.Duration
	Samples            []ProduceSample
	// RateChanges are the changes made through Options.Control.
	RateChanges []RateChange
}

// RecordsPerSecond is the achieved rate over the whole run.
func (r ProduceResult) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// ErrorSummary lists the error messages, most frequent first.
func (r ProduceResult) ErrorSummary() []string {
	msgs := make([]string, 0, len(r.ErrorCounts))
	for m := range r.ErrorCounts {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return r.ErrorCounts[msgs[i]] > r.ErrorCounts[msgs[j]] })
	for i, m := range msgs {
		msgs[i] = fmt.Sprintf("%d x %s", r.ErrorCounts[m], m)
	}
	return msgs
}

const maxErrorKinds = 10

// produceStats is what the produce callbacks of every connection update.
type produceStats struct {
	records, bytes, errors atomic.Int64
	total                  latencyHistogram
	interval               atomic.Pointer[latencyHistogram]

	mu          sync.Mutex
	errorCounts map[string]int64
}

func (s *produceStats) promise(r *kgo.Record, err error) {
	if err != nil {
		s.errors.Add(1)
		s.mu.Lock()
		msg := err.Error()
		if _, ok := s.errorCounts[msg]; ok || len(s.errorCounts) < maxErrorKinds {
			s.errorCounts[msg]++
		}
		s.mu.Unlock()
		return
	}
	// r.Timestamp was set just before Produce, so the latency covers
	// buffering, batching (linger), the request and the broker's ack.
	d := time.Since(r.Timestamp)
	s.total.Record(d)
	s.interval.Load().Record(d)
	s.records.Add(1)
	s.bytes.Add(int64(len(r.Key) + len(r.Value)))
}

// recordQuota hands out sequence numbers, at most limit of them (no limit
// when limit is 0), so that --records N produces exactly N records
// however many connections share the work.
type recordQuota struct {
	next  atomic.Int64
	limit int64
}

func (q *recordQuota) claim(n int64) (first, got int64) {
	first = q.next.Add(n) - n
	if q.limit <= 0 {
		return first, n
	}
	return first, max(0, min(n, q.limit-first))
}

// Produce runs a load test and returns its summary. Produce errors are
// counted in the result, not returned; the error is for options, topic
// creation and clients that cannot start. When ctx ends the run stops
// early and still waits up to FlushTimeout for the records in flight.
func Produce(ctx context.Context, o ProduceOptions) (ProduceResult, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return ProduceResult{}, err
	}
	if err := ensureTopic(ctx, o); err != nil {
		return ProduceResult{}, err
	}
	var avroGen *avroValues
	if o.Format == FormatAvro {
		var err error
		if avroGen, err = newAvroValues(ctx, o.RegistryURL, o.AvroSchema, o.Topic); err != nil {
			return ProduceResult{}, err
		}
	}
	if o.SchemaEvolve && avroGen != nil {
		var fromSeq int64
		var fromTime time.Time
		if o.Records > 0 {
			fromSeq = max(1, o.Records/2)
		} else {
			fromTime = time.Now().Add(o.Duration / 2)
		}
		if err := avroGen.evolve(ctx, o.RegistryURL, o.AvroSchema, fromSeq, fromTime); err != nil {
			return ProduceResult{}, err
		}
	}
	opts, err := producerOptions(o)
	if err != nil {
		return ProduceResult{}, err
	}
	clients := make([]*kgo.Client, o.Connections)
	for i := range clients {
		if clients[i], err = kgo.NewClient(opts...); err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return ProduceResult{}, fmt.Errorf("creating producer client: %w", err)
		}
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	stats := &produceStats{errorCounts: map[string]int64{}}
	stats.interval.Store(new(latencyHistogram))
	quota := &recordQuota{limit: o.Records}
	// The pool is made before the clock starts: filling it takes time
	// (much more under the race detector) that a schedule's first
	// second would otherwise lose.
	pool := newRandomPool(o.Size, uint64(time.Now().UnixNano()))
	start := time.Now()
	// Each connection paces itself at its share of the rate, as
	// independent producers do: a shared pacer handed out 10 ms chunks to
	// whichever connection asked, so every produce request carried a whole
	// chunk and 20 connections sent no more requests than one, hiding
	// what many producers cost a broker.
	share := o.Profile.divided(o.Connections)
	if o.Control != nil {
		o.Control.begin(start, o.Profile)
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if o.Duration > 0 {
		runCtx, stopRun = context.WithTimeout(ctx, o.Duration)
		defer stopRun()
	}
	// Records are produced with a context that outlives the run, so that
	// the end of --duration or a Ctrl-C stops generating without failing
	// the records already buffered: Flush below waits for their acks.
	produceCtx := context.WithoutCancel(ctx)

	result := ProduceResult{Started: start}
	sampling, stopSampling := context.WithCancel(context.WithoutCancel(ctx))
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		result.Samples = sample(sampling, o, stats, start)
	}()

	var g errgroup.Group
	for i, cl := range clients {
		gen := &recordGenerator{format: o.Format, size: o.Size, keys: o.Keys, pool: pool, avro: avroGen,
			rnd: rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i)))}
		g.Go(func() error {
			pace := newPacer(share, start)
			pace.control, pace.share = o.Control, 1/float64(o.Connections)
			produceLoop(runCtx, produceCtx, cl, gen, pace, quota, stats, o.Topic)
			flushCtx, cancel := context.WithTimeout(produceCtx, o.FlushTimeout)
			defer cancel()
			if err := cl.Flush(flushCtx); err != nil {
				// Aborting fails what is still buffered through the
				// promise, so those records are counted as errors.
				abortCtx, cancel := context.WithTimeout(produceCtx, 5*time.Second)
				defer cancel()
				_ = cl.AbortBufferedRecords(abortCtx)
			}
			return nil
		})
	}
	_ = g.Wait()
	result.Elapsed = time.Since(start)
	stopSampling()
	<-samplerDone

	result.Options = o
	if o.Control != nil {
		result.RateChanges = o.Control.Changes()
	}
	result.Records, result.Bytes, result.Errors = stats.records.Load(), stats.bytes.Load(), stats.errors.Load()
	stats.mu.Lock()
	result.ErrorCounts = stats.errorCounts
	stats.mu.Unlock()
	h := &stats.total
	result.P50, result.P95, result.P99, result.Max = h.Quantile(0.50), h.Quantile(0.95), h.Quantile(0.99), h.Max()
	return result, nil
}

// produceLoop generates and produces records until runCtx ends or the
// quota is used up. Produce blocks when the client's buffer is full, which
// is what holds an unlimited rate to what the brokers take.
func produceLoop(runCtx, produceCtx context.Context, cl *kgo.Client, gen *recordGenerator, pace *pacer, quota *recordQuota, stats *produceStats, topic string) {
	const unlimitedChunk = 256
	for runCtx.Err() == nil {
		n, err := pace.take(runCtx, unlimitedChunk)
		if err != nil {
			return
		}
		first, got := quota.claim(int64(n))
		if got == 0 {
			return
		}
		for seq := first; seq < first+got; seq++ {
			now := time.Now()
			key := gen.key(seq)
			value, err := gen.value(produceCtx, seq, key, now)
			r := &kgo.Record{Topic: topic, Key: key, Value: value, Timestamp: now}
			if err != nil {
				stats.promise(r, err)
				continue
			}
			cl.Produce(produceCtx, r, stats.promise)
		}
	}
}

// sample records one ProduceSample per SampleEvery until ctx ends, then a
// last, partial one.
func sample(ctx context.Context, o ProduceOptions, stats *produceStats, start time.Time) []ProduceSample {
	ticker := time.NewTicker(o.SampleEvery)
	defer ticker.Stop()
	var samples []ProduceSample
	var lastRecords, lastBytes, lastErrors int64
	take := func() {
		h := stats.interval.Swap(new(latencyHistogram))
		rec, b, e := stats.records.Load(), stats.bytes.Load(), stats.errors.Load()
		s := ProduceSample{Elapsed: time.Since(start), Records: rec - lastRecords, Bytes: b - lastBytes,
			Errors: e - lastErrors, P50: h.Quantile(0.5), P99: h.Quantile(0.99), TotalRecords: rec}
		lastRecords, lastBytes, lastErrors = rec, b, e
		samples = append(samples, s)
		if o.OnSample != nil {
			o.OnSample(s)
		}
	}
	for {
		select {
		case <-ctx.Done():
			take()
			return samples
		case <-ticker.C:
			take()
		}
	}
}
