package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// feedSource hands out whatever the test feeds it, to one reader.
type feedSource struct {
	feed  chan []*connector.Record
	mu    sync.Mutex
	acked int
}

func (s *feedSource) OpenReader(context.Context, string) (connector.Reader, error) { return s, nil }

func (s *feedSource) Read(ctx context.Context, _ int) ([]*connector.Record, error) {
	select {
	case recs := <-s.feed:
		return recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *feedSource) Ack(recs []*connector.Record) {
	s.mu.Lock()
	s.acked += len(recs)
	s.mu.Unlock()
}

func (s *feedSource) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

func (s *feedSource) Close(context.Context) error { return nil }

// startFed runs a pipeline over a feedSource until the test ends.
func startFed(t *testing.T, o Options) (*Pipeline, *feedSource, *memSink) {
	t.Helper()
	src := &feedSource{feed: make(chan []*connector.Record)}
	sink := &memSink{}
	o.Name, o.Source, o.Sink, o.Logger, o.Linger = "wm", src, sink, quiet, time.Millisecond
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return p, src, sink
}

// feedAndWait hands recs to the pipeline and waits until all are acked.
func feedAndWait(t *testing.T, src *feedSource, recs ...*connector.Record) {
	t.Helper()
	want := src.ackedCount() + len(recs)
	src.feed <- recs
	deadline := time.Now().Add(10 * time.Second)
	for src.ackedCount() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records acked", src.ackedCount(), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWatermarkAdvancesPastAnIdlePartitionAfterTheIdleTimeout(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	event := clock.Now().Add(-time.Hour) // synthetic event times, an hour old
	p, src, _ := startFed(t, Options{Clock: clock.Now, IdlePartitionTimeout: 30 * time.Second})
	rec := func(partition int32, offset int64, ts time.Time) *connector.Record {
		return &connector.Record{Topic: "t", Partition: partition, Offset: offset, Timestamp: ts, Value: []byte("x")}
	}

	if st := p.Status(); st.Watermark != nil {
		t.Fatalf("watermark %v before anything was written; want none", st.Watermark)
	}
	feedAndWait(t, src, rec(0, 0, event.Add(10*time.Second)), rec(1, 0, event.Add(5*time.Second)))
	assertWatermark(t, p, event.Add(5*time.Second), 3595) // the slower partition holds it

	clock.Add(10 * time.Second)
	feedAndWait(t, src, rec(0, 1, event.Add(20*time.Second)))
	// Partition 1 was read from 10 s ago: active, still holding it back.
	assertWatermark(t, p, event.Add(5*time.Second), 3605)

	clock.Add(21 * time.Second) // partition 1 quiet for 31 s, partition 0 for 21 s
	assertWatermark(t, p, event.Add(20*time.Second), 3611)

	// Partition 1 wakes with an older record: the watermark does not go back.
	clock.Add(time.Second)
	feedAndWait(t, src, rec(1, 1, event.Add(7*time.Second)))
	assertWatermark(t, p, event.Add(20*time.Second), 3612)

	st := p.Status()
	if len(st.EventTime) != 2 || st.EventTime[0].Written != 2 || st.EventTime[1].Written != 2 {
		t.Fatalf("per partition event time %+v; want two partitions with 2 records written each", st.EventTime)
	}
	if got := st.EventTime[1].EventTime; !got.Equal(event.Add(7 * time.Second)) {
		t.Fatalf("partition 1 event time %v, want %v", got, event.Add(7*time.Second))
	}
}

func assertWatermark(t *testing.T, p *Pipeline, want time.Time, freshness float64) {
	t.Helper()
	st := p.Status()
	if st.Watermark == nil || !st.Watermark.Equal(want) {
		t.Fatalf("watermark %v, want %v", st.Watermark, want)
	}
	if st.FreshnessSeconds == nil || *st.FreshnessSeconds != freshness {
		t.Fatalf("freshness %v s, want %v s", *st.FreshnessSeconds, freshness)
	}
}

func TestTimestampPolicies(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	produced := time.Date(2026, 4, 30, 8, 0, 0, 0, time.UTC)
	jsonDec, err := codec.NewDecoder(codec.Options{Key: "raw", Value: "json"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy TimestampPolicy
		value  string
		typ    connector.TimestampType
		want   time.Time // zero: the record is bad input (skipped)
	}{
		{"source keeps the record's", TimestampPolicy{}, `{}`, connector.TimestampLogAppendTime, produced},
		{"create time", TimestampPolicy{Policy: "create_time"}, `{}`, connector.TimestampCreateTime, produced},
		{"create time refuses log append time", TimestampPolicy{Policy: "create_time"}, `{}`, connector.TimestampLogAppendTime, time.Time{}},
		{"log append time", TimestampPolicy{Policy: "log_append_time"}, `{}`, connector.TimestampLogAppendTime, produced},
		{"processing time", TimestampPolicy{Policy: "processing_time"}, `{}`, connector.TimestampCreateTime, clock.Now()},
		{"field rfc3339", TimestampPolicy{Policy: "field", Field: "at"}, `{"at":"2026-01-02T03:04:05.5Z"}`, 0, time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		{"nested field unix", TimestampPolicy{Policy: "field", Field: "meta.ts", Format: "unix"}, `{"meta":{"ts":1767323045}}`, 0, time.Unix(1767323045, 0)},
		{"field unix_ms", TimestampPolicy{Policy: "field", Field: "ts", Format: "unix_ms"}, `{"ts":1767323045123}`, 0, time.UnixMilli(1767323045123)},
		{"field layout", TimestampPolicy{Policy: "field", Field: "d", Format: "2006-01-02 15:04"}, `{"d":"2026-01-02 03:04"}`, 0, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		{"missing field is bad input", TimestampPolicy{Policy: "field", Field: "at"}, `{"other":1}`, 0, time.Time{}},
		{"unparseable field is bad input", TimestampPolicy{Policy: "field", Field: "at"}, `{"at":"yesterday"}`, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, src, sink := startFed(t, Options{Clock: clock.Now, Timestamp: tc.policy, Decoder: jsonDec, OnError: OnErrorSkip})
			feedAndWait(t, src, &connector.Record{Topic: "t", Value: []byte(tc.value), Timestamp: produced, TimestampType: tc.typ})
			if tc.want.IsZero() {
				if sink.count() != 0 || p.Status().Skipped != 1 {
					t.Fatalf("sink got %d records, %d skipped; want the record skipped as bad input", sink.count(), p.Status().Skipped)
				}
				return
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if len(sink.written) != 1 || !sink.written[0].Timestamp.Equal(tc.want) {
				t.Fatalf("sink got %v; want one record stamped %v", sink.written, tc.want)
			}
		})
	}
}
