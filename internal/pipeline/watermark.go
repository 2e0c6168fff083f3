package pipeline

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// watermarks follow event time per partition and per pipeline.
//
// A partition's event time is the largest timestamp (after the timestamp
// policy) among its records made durable. The pipeline's watermark is the
// minimum of that over active partitions: those with records read and not
// yet settled, or read from within the idle timeout. A partition idle for
// longer does not hold it back, so one quiet partition does not freeze
// freshness. An active partition with records in flight and nothing
// durable yet holds the watermark where it is; with every partition idle
// (all caught up) it is the largest event time written. It never goes back: a partition that
// wakes with older records leaves it where it was.
//
// Records routed by on_error settle their partition's in-flight count but
// do not move its event time: they were not written.
type watermarks struct {
	now  func() time.Time
	idle time.Duration

	mu    sync.Mutex
	parts map[partitionKey]*partitionTime
	mark  time.Time // the pipeline's watermark; zero until known

	mWatermark, mFreshness prometheus.Gauge
	mLatency               prometheus.Observer
}

type partitionKey struct {
	topic     string
	partition int32
}

type partitionTime struct {
	maxDurable time.Time // largest event time made durable
	lastRead   time.Time // by the pipeline's clock
	pending    int       // read and not settled
	written    int64     // records made durable
}

func newWatermarks(pipeline string, now func() time.Time, idle time.Duration) *watermarks {
	return &watermarks{now: now, idle: idle, parts: map[partitionKey]*partitionTime{},
		mWatermark: metrics.WatermarkSeconds.WithLabelValues(pipeline),
		mFreshness: metrics.FreshnessSeconds.WithLabelValues(pipeline),
		mLatency:   metrics.EndToEndLatency.WithLabelValues(pipeline)}
}

// eachPartition calls f once per run of records of the same partition.
func eachPartition(recs []*connector.Record, f func(k partitionKey, run []*connector.Record)) {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Partition == recs[i].Partition && recs[j].Topic == recs[i].Topic {
			j++
		}
		f(partitionKey{recs[i].Topic, recs[i].Partition}, recs[i:j])
		i = j
	}
}

func (w *watermarks) partition(k partitionKey) *partitionTime {
	pt := w.parts[k]
	if pt == nil {
		pt = &partitionTime{}
		w.parts[k] = pt
	}
	return pt
}

// read counts recs as in flight in their partitions.
func (w *watermarks) read(recs []*connector.Record) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	eachPartition(recs, func(k partitionKey, run []*connector.Record) {
		pt := w.partition(k)
		pt.pending += len(run)
		pt.lastRead = now
	})
}

// settled takes recs out of flight; durable ones move their partition's
// event time, and their end-to-end latency (event time to durable) is
// observed.
func (w *watermarks) settled(recs []*connector.Record, durable bool) {
	if len(recs) == 0 {
		return
	}
	now := w.now()
	w.mu.Lock()
	eachPartition(recs, func(k partitionKey, run []*connector.Record) {
		pt := w.partition(k)
		pt.pending = max(pt.pending-len(run), 0)
		if !durable {
			return
		}
		pt.written += int64(len(run))
		for _, r := range run {
			if r.Timestamp.IsZero() {
				continue
			}
			if r.Timestamp.After(pt.maxDurable) {
				pt.maxDurable = r.Timestamp
			}
			w.mLatency.Observe(max(now.Sub(r.Timestamp), 0).Seconds())
		}
	})
	w.advance(now)
	w.mu.Unlock()
}

// advance recomputes the watermark at now and updates the gauges; callers
// hold mu.
func (w *watermarks) advance(now time.Time) {
	var low, high time.Time
	active, unknown := false, false
	for _, pt := range w.parts {
		if pt.maxDurable.After(high) {
			high = pt.maxDurable
		}
		if pt.pending == 0 && now.Sub(pt.lastRead) >= w.idle {
			continue
		}
		if pt.maxDurable.IsZero() {
			// Nothing durable yet: records in flight hold the watermark;
			// a partition whose records were all routed by on_error has
			// no event time to hold it at.
			unknown = unknown || pt.pending > 0
			continue
		}
		active = true
		if low.IsZero() || pt.maxDurable.Before(low) {
			low = pt.maxDurable
		}
	}
	candidate := low
	switch {
	case unknown:
		candidate = time.Time{}
	case !active:
		candidate = high
	}
	if candidate.After(w.mark) {
		w.mark = candidate
	}
	if !w.mark.IsZero() {
		w.mWatermark.Set(float64(w.mark.UnixNano()) / 1e9)
		w.mFreshness.Set(now.Sub(w.mark).Seconds())
	}
}

// PartitionEventTime is one partition's event-time progress, for status.
type PartitionEventTime struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// EventTime is the largest event time made durable; zero when none.
	EventTime time.Time `json:"event_time"`
	InFlight  int       `json:"in_flight"`
	// Written is the records of the partition this process made durable.
	Written int64 `json:"written"`
	// Idle: nothing in flight and nothing read for idle_partition_timeout;
	// the partition does not hold the watermark back.
	Idle bool `json:"idle"`
}

// snapshot advances the watermark to now and returns it (zero when not
// known yet), the freshness (now minus it) and every partition's state.
func (w *watermarks) snapshot() (mark time.Time, freshness time.Duration, parts []PartitionEventTime) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(now)
	for k, pt := range w.parts {
		parts = append(parts, PartitionEventTime{Topic: k.topic, Partition: k.partition, EventTime: pt.maxDurable,
			InFlight: pt.pending, Written: pt.written, Idle: pt.pending == 0 && now.Sub(pt.lastRead) >= w.idle})
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	if w.mark.IsZero() {
		return time.Time{}, 0, parts
	}
	return w.mark, now.Sub(w.mark), parts
}

// refreshEventTime moves the watermark and freshness gauges with the
// clock (an idle partition stops holding the watermark back without any
// record moving) until ctx ends.
func (p *Pipeline) refreshEventTime(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.eventTime.mu.Lock()
			p.eventTime.advance(p.eventTime.now())
			p.eventTime.mu.Unlock()
		}
	}
}
