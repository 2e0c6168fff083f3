package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

const historySize = 50

// stats are the pipeline's counters, kept as atomics for the status page
// and mirrored to Prometheus.
type stats struct {
	recordsIn, bytesIn   atomic.Int64
	recordsOut, bytesOut atomic.Int64
	deadLettered         atomic.Int64
	skipped              atomic.Int64
	filtered             atomic.Int64
	errors               atomic.Int64
	retries              atomic.Int64
	batches              atomic.Int64

	mu      sync.Mutex
	history []BatchInfo // ring, newest last

	mIn, mBytesIn, mOut, mBytesOut, mFiltered prometheus.Counter
	mBatch, mWrite                            prometheus.Observer
}

// BatchInfo describes one sink write.
type BatchInfo struct {
	Records  int           `json:"records"`
	Bytes    int           `json:"bytes"`
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"took_ns"`
	Lingered time.Duration `json:"lingered_ns"` // first record in batch -> write start
	Trigger  string        `json:"trigger"`     // why it was cut: records, bytes, linger, limit, pause, stop
}

func (s *stats) init(name string) {
	s.mIn = metrics.RecordsIn.WithLabelValues(name)
	s.mBytesIn = metrics.BytesIn.WithLabelValues(name)
	s.mOut = metrics.RecordsOut.WithLabelValues(name)
	s.mBytesOut = metrics.BytesOut.WithLabelValues(name)
	s.mFiltered = metrics.RecordsFiltered.WithLabelValues(name)
	s.mBatch = metrics.BatchRecords.WithLabelValues(name)
	s.mWrite = metrics.WriteSeconds.WithLabelValues(name)
}

func (s *stats) read(n, bytes int) {
	s.recordsIn.Add(int64(n))
	s.bytesIn.Add(int64(bytes))
	s.mIn.Add(float64(n))
	s.mBytesIn.Add(float64(bytes))
}

func (s *stats) filter() {
	s.filtered.Add(1)
	s.mFiltered.Inc()
}

// durable counts n records (bytes bytes) the sink has made durable. It is
// called as soon as the sink's write returns them durable, before they are
// acked to the source: the source's ack (a Pub/Sub ack, a Kafka commit
// bookkeeping) says nothing about where the data is, and records_out must
// never lag behind what the sink already holds.
func (s *stats) durable(n, bytes int) {
	s.recordsOut.Add(int64(n))
	s.bytesOut.Add(int64(bytes))
	s.mOut.Add(float64(n))
	s.mBytesOut.Add(float64(bytes))
}

// wrote records a batch, once settled, whose n records (bytes bytes) were
// made durable (and counted by durable); the rest of the batch was
// rejected as bad input and counted where it went, or released.
func (s *stats) wrote(b *batch, n, bytes int, start, end time.Time) {
	s.batches.Add(1)
	s.mBatch.Observe(float64(n))
	s.mWrite.Observe(end.Sub(start).Seconds())
	s.mu.Lock()
	if len(s.history) == historySize {
		copy(s.history, s.history[1:])
		s.history = s.history[:historySize-1]
	}
	s.history = append(s.history, BatchInfo{Records: n, Bytes: bytes, Started: start, Took: end.Sub(start), Lingered: start.Sub(b.first), Trigger: b.trigger})
	s.mu.Unlock()
}

// Status is a snapshot of a pipeline for the admin API and `sluice status`.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Degraded: running, but something is being retried (Retrying says
	// what, since when and why) or the source cannot reach all its
	// servers (Source), so records may not be moving.
	Degraded     bool             `json:"degraded"`
	Retrying     []RetryStatus    `json:"retrying,omitempty"`
	Error        string           `json:"error,omitempty"`
	Since        time.Time        `json:"since"`
	Consumers    []ConsumerStatus `json:"consumers"`
	RecordsIn    int64            `json:"records_in"`
	RecordsOut   int64            `json:"records_out"`
	BytesIn      int64            `json:"bytes_in"`
	BytesOut     int64            `json:"bytes_out"`
	DeadLettered int64            `json:"dead_lettered"`
	Skipped      int64            `json:"skipped"`
	Filtered     int64            `json:"filtered"` // dropped by a transforms filter
	// RoutedOut is, with several named sinks, the records each made durable.
	RoutedOut       map[string]int64 `json:"routed_out,omitempty"`
	Errors          int64            `json:"errors"`
	Retries         int64            `json:"retries"`
	Batches         int64            `json:"batches"`
	InFlightRecords int64            `json:"in_flight_records"`
	InFlightBytes   int64            `json:"in_flight_bytes"`
	Lag             int64            `json:"lag"`
	// LagSeconds is how long the oldest record not yet written has waited
	// (by its timestamp), over consumers; 0 when caught up or unknown.
	LagSeconds    float64     `json:"lag_seconds"`
	RecentBatches []BatchInfo `json:"recent_batches"`
	// Watermark is the minimum over active partitions of the largest
	// event time made durable (nil until known); FreshnessSeconds is now
	// minus it. EventTime is each partition's progress.
	Watermark        *time.Time           `json:"watermark,omitempty"`
	FreshnessSeconds *float64             `json:"freshness_seconds,omitempty"`
	EventTime        []PartitionEventTime `json:"event_time,omitempty"`

	// Source is whether the source's servers answer, for sources that
	// can tell (connector.HealthReporter): a broker that cannot be
	// reached is told apart from an idle topic.
	Source *connector.SourceHealth `json:"source,omitempty"`
}

// ConsumerStatus is one consumer's view.
type ConsumerStatus struct {
	ID       string                 `json:"id"`
	Assigned []connector.Assignment `json:"assigned"`
	// WaitingSince: the consumer owns no partition, since then.
	WaitingSince *time.Time                 `json:"waiting_for_partitions_since,omitempty"`
	Lag          map[string]map[int32]int64 `json:"lag,omitempty"`
	// Warnings: what keeps the consumer from reading that is not an
	// error (a source topic that does not exist yet).
	Warnings []string `json:"warnings,omitempty"`
}

// Status returns a snapshot.
func (p *Pipeline) Status() Status {
	p.mu.Lock()
	st := Status{Name: p.opts.Name, State: p.state, Since: p.started}
	if p.failure != nil {
		st.Error = p.failure.Error()
	}
	cs := p.consumerList()
	p.mu.Unlock()
	st.Retrying = p.retrying.snapshot()
	st.Degraded = len(st.Retrying) > 0
	if hr, ok := p.opts.Source.(connector.HealthReporter); ok {
		h := hr.SourceHealth()
		st.Source = &h
		st.Degraded = st.Degraded || h.State != connector.SourceHealthy
	}
	for _, c := range cs {
		cst := ConsumerStatus{ID: c.id}
		if ar, ok := c.reader.(connector.AssignmentReporter); ok {
			cst.Assigned = ar.Assigned()
		}
		if w, ok := c.reader.(connector.Warner); ok {
			cst.Warnings = w.Warnings()
			st.Degraded = st.Degraded || len(cst.Warnings) > 0
		}
		if wr, ok := c.reader.(connector.WaitReporter); ok {
			if since := wr.WaitingSince(); !since.IsZero() {
				cst.WaitingSince = &since
			}
		}
		if lr, ok := c.reader.(connector.LagReporter); ok {
			cst.Lag = lr.Lag()
			for _, parts := range cst.Lag {
				for _, l := range parts {
					st.Lag += l
				}
			}
		}
		if ar, ok := c.reader.(connector.LagAgeReporter); ok {
			st.LagSeconds = max(st.LagSeconds, ar.LagAge().Seconds())
		}
		st.Consumers = append(st.Consumers, cst)
	}
	st.RecordsIn = p.stats.recordsIn.Load()
	st.RecordsOut = p.stats.recordsOut.Load()
	st.BytesIn = p.stats.bytesIn.Load()
	st.BytesOut = p.stats.bytesOut.Load()
	st.DeadLettered = p.stats.deadLettered.Load()
	st.Skipped = p.stats.skipped.Load()
	st.Filtered = p.stats.filtered.Load()
	if rr, ok := p.opts.Sink.(connector.RouteReporter); ok {
		st.RoutedOut = rr.Written()
	}
	st.Errors = p.stats.errors.Load()
	st.Retries = p.stats.retries.Load()
	st.Batches = p.stats.batches.Load()
	st.InFlightRecords, st.InFlightBytes = p.limiter.usage()
	metrics.InFlightRecords.WithLabelValues(p.opts.Name).Set(float64(st.InFlightRecords))
	metrics.InFlightBytes.WithLabelValues(p.opts.Name).Set(float64(st.InFlightBytes))
	metrics.ConsumerLagSeconds.WithLabelValues(p.opts.Name).Set(st.LagSeconds)
	if mark, fresh, parts := p.eventTime.snapshot(); !mark.IsZero() {
		secs := fresh.Seconds()
		st.Watermark, st.FreshnessSeconds, st.EventTime = &mark, &secs, parts
	} else {
		st.EventTime = parts
	}
	p.stats.mu.Lock()
	st.RecentBatches = append([]BatchInfo(nil), p.stats.history...)
	p.stats.mu.Unlock()
	return st
}
