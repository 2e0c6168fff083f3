package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// splitSink holds every write until two are under way (one per consumer),
// then fails the first permanently and every other one transiently,
// forever: one consumer fails while the other keeps retrying.
type splitSink struct {
	arrived  atomic.Int32
	both     chan struct{}
	bothOnce sync.Once
	failed   atomic.Bool
}

func (s *splitSink) Write(ctx context.Context, _ []*connector.Record) error {
	if s.arrived.Add(1) >= 2 {
		s.bothOnce.Do(func() { close(s.both) })
	}
	select {
	case <-s.both:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.failed.CompareAndSwap(false, true) {
		return connector.Permanent(errors.New("table orders: permission denied"))
	}
	return errors.New("database is down")
}

func (s *splitSink) Close(context.Context) error { return nil }

// runToEnd runs p without ever cancelling it, as a process that gets no
// signal, and returns Run's error, failing the test if Run does not return.
func runToEnd(t *testing.T, p *Pipeline) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case err := <-done:
		done <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the pipeline did not stop after a consumer failed; it waits for a signal")
		return nil
	}
}

// TestFailedConsumerStopsThePipeline: a consumer that failed ended only its
// errgroup's context; the other consumers' writes kept retrying on a
// context that only a signal would end, and the drain timer never started.
func TestFailedConsumerStopsThePipeline(t *testing.T) {
	src := newMemSource(400, plain)
	sink := &splitSink{both: make(chan struct{})}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, BatchRecords: 10, Linger: time.Millisecond,
		ShutdownTimeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = runToEnd(t, p)
	if err == nil || !strings.Contains(err.Error(), "table orders: permission denied") || !strings.Contains(err.Error(), "consumer t-") {
		t.Fatalf("Run returned %v; want the failed consumer's error", err)
	}
	st := p.Status()
	if st.State != StateFailed || !strings.Contains(st.Error, "permission denied") {
		t.Fatalf("status %s %q; want failed with the reason", st.State, st.Error)
	}
	if d, _ := src.ackedCount(); d != 0 {
		t.Fatalf("%d records acked; nothing was written", d)
	}
}

// failingSource's reader named fail returns err from every Read; the
// others serve records from memSource.
type failingSource struct {
	*memSource
	fail string
	err  error
}

func (s *failingSource) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	if member == s.fail {
		return &failingReader{err: s.err}, nil
	}
	return s.memSource.OpenReader(ctx, member)
}

type failingReader struct{ err error }

func (r *failingReader) Read(context.Context, int) ([]*connector.Record, error) { return nil, r.err }
func (r *failingReader) Ack([]*connector.Record)                                {}
func (r *failingReader) Close(context.Context) error                            { return nil }

// TestPermanentSourceErrorStopsThePipeline: every source error was retried
// forever, even one that waiting cannot heal (a fenced group member).
func TestPermanentSourceErrorStopsThePipeline(t *testing.T) {
	src := &failingSource{memSource: newMemSource(100, plain), fail: "t-2",
		err: connector.Permanent(errors.New("FENCED_INSTANCE_ID: another consumer joined with group.instance.id host-a-t-2"))}
	sink := &memSink{}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, BatchRecords: 10, Linger: time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = runToEnd(t, p)
	if err == nil || !strings.Contains(err.Error(), "consumer t-2: reading from the source: FENCED_INSTANCE_ID") {
		t.Fatalf("Run returned %v; want the failed reader's error", err)
	}
	// The healthy consumer drained: whatever it wrote is acked.
	if d, _ := src.ackedCount(); d != sink.count() {
		t.Fatalf("%d records written but %d acked", sink.count(), d)
	}
}
