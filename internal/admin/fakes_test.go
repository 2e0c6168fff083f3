package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// propSource hands out records 0..n-1 once each across its readers, then
// idles. Its consumer properties are validated like the Kafka source's.
type propSource struct {
	mu      sync.Mutex
	n, next int
	props   map[string]any
	parsed  config.ConsumerProperties
	opened  int
	acked   atomic.Int64
}

func newPropSource(n int, props map[string]any) *propSource {
	s := &propSource{n: n}
	if err := s.SetProperties(props); err != nil {
		panic(err)
	}
	return s
}

func (s *propSource) OpenReader(context.Context, string) (connector.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened++
	return &propReader{s: s}, nil
}

func (s *propSource) Properties() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.props)
}

func (s *propSource) SetProperties(changes map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := maps.Clone(s.props)
	if merged == nil {
		merged = map[string]any{}
	}
	for k, v := range changes {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	parsed, probs := config.ParseConsumerProperties(merged)
	if len(probs) > 0 {
		return fmt.Errorf("%s: %s", probs[0].Name, probs[0].Problem)
	}
	s.props, s.parsed = merged, parsed
	return nil
}

func (s *propSource) MaxPollRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parsed.MaxPollRecords
}

func (s *propSource) readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

type propReader struct{ s *propSource }

func (r *propReader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	r.s.mu.Lock()
	if r.s.next < r.s.n {
		end := min(r.s.next+max, r.s.n)
		out := make([]*connector.Record, 0, end-r.s.next)
		for i := r.s.next; i < end; i++ {
			out = append(out, &connector.Record{Topic: "t", Partition: int32(i % 3), Offset: int64(i), Value: []byte("v")})
		}
		r.s.next = end
		r.s.mu.Unlock()
		return out, nil
	}
	r.s.mu.Unlock()
	// Idle: come back soon, so records added later (n raised) are read.
	t := time.NewTimer(2 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, nil
	}
}

func (r *propReader) Ack(recs []*connector.Record) { r.s.acked.Add(int64(len(recs))) }
func (r *propReader) Close(context.Context) error  { return nil }

// plainSource has no properties to change.
type plainSource struct{ inner *propSource }

func (s plainSource) OpenReader(ctx context.Context, m string) (connector.Reader, error) {
	return s.inner.OpenReader(ctx, m)
}

type countSink struct{ written atomic.Int64 }

func (s *countSink) Write(_ context.Context, b []*connector.Record) error {
	s.written.Add(int64(len(b)))
	return nil
}
func (s *countSink) Close(context.Context) error { return nil }

// mergeSink merges on request and keeps a history, like the SQL sinks.
type mergeSink struct {
	countSink
	mu     sync.Mutex
	merges []connector.MergeInfo
	fail   bool
}

func (s *mergeSink) MergeNow(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("calling merge_films(): relation films does not exist")
	}
	now := time.Now()
	s.merges = append(s.merges, connector.MergeInfo{Batch: int64(len(s.merges) + 1), Records: s.written.Load(), Trigger: connector.TriggerManual, Started: now, Ended: now.Add(3 * time.Millisecond), Took: 3 * time.Millisecond, Attempt: 1})
	return nil
}

func (s *mergeSink) Merges() []connector.MergeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]connector.MergeInfo(nil), s.merges...)
}

var _ connector.Merger = (*mergeSink)(nil)

// startPipeline runs a pipeline until the test ends and waits until it
// runs.
func startPipeline(t *testing.T, name string, src connector.Source, sink connector.Sink, consumers int) *pipeline.Pipeline {
	t.Helper()
	mp := 0
	if r, ok := src.(connector.Reconfigurable); ok {
		mp = r.MaxPollRecords()
	}
	p, err := pipeline.New(pipeline.Options{Name: name, Source: src, Sink: sink, Consumers: consumers, MaxPollRecords: mp, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline %s: %v", name, err)
		}
	})
	waitFor(t, name+" running", func() bool { return p.Status().State == pipeline.StateRunning })
	return p
}

// waitFor polls cond until it holds. The deadline is generous: CI runs
// with -race on a loaded two-core machine, where a pipeline may not be
// scheduled for seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitForRecordsOut waits until the pipeline's records_out reaches n. A
// sink's own count is not enough: the pipeline counts a batch as out only
// after the sink's Write has returned, so status and rates read right
// after the sink saw the last record may still lag behind it.
func waitForRecordsOut(t *testing.T, p *pipeline.Pipeline, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s records_out %d", p.Status().Name, n), func() bool { return p.Status().RecordsOut >= n })
}
