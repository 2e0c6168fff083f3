package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// flakySource serves memSource's records, but its reader's Read returns
// err for the first fails calls.
type flakySource struct {
	*memSource
	err   error
	fails int64
	reads atomic.Int64
}

func (s *flakySource) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	r, _ := s.memSource.OpenReader(ctx, member)
	return &flakyReader{Reader: r, s: s}, nil
}

type flakyReader struct {
	connector.Reader
	s *flakySource
}

func (r *flakyReader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	if n := r.s.reads.Add(1); n <= r.s.fails {
		return nil, r.s.err
	}
	return r.Reader.Read(ctx, max)
}

// The read loop checked readCtx after cancelling it, so it took every
// source error for its own deadline: the error was neither counted nor
// logged, and the loop read again at once, spinning.
func TestSourceReadErrorsAreCountedAndBackedOff(t *testing.T) {
	src := &flakySource{memSource: newMemSource(10, plain), err: errors.New("broker unreachable"), fails: 3}
	sink := &memSink{}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 10, Linger: time.Millisecond, Logger: quiet})
	if err := runUntil(t, p, "10 records acked", func() bool { d, _ := src.ackedCount(); return d == 10 }); err != nil {
		t.Fatal(err)
	}
	if got := p.Status().Errors; got != 3 {
		t.Fatalf("status shows %d errors, want the source's 3", got)
	}
	if got := src.reads.Load(); got > 3+3 {
		t.Fatalf("%d reads for 3 failures and 10 records: the loop did not back off", got)
	}
}

// healthSource is a memSource whose client says how its servers answer.
type healthSource struct {
	*memSource
	health connector.SourceHealth
}

func (s *healthSource) SourceHealth() connector.SourceHealth { return s.health }

// A source whose brokers cannot be reached moves nothing, like an idle
// one: status tells them apart by the source's own health, and a running
// pipeline with an unreachable source is degraded.
func TestStatusShowsTheSourceHealth(t *testing.T) {
	since := time.Date(2026, 12, 4, 12, 3, 14, 0, time.UTC)
	for _, tc := range []struct {
		health   connector.SourceHealth
		degraded bool
	}{
		{connector.SourceHealth{State: connector.SourceHealthy}, false},
		{connector.SourceHealth{State: connector.SourceUnreachable, Since: since, Errors: 7, LastError: "dial tcp 127.0.0.1:9092: connect: connection refused"}, true},
	} {
		t.Run(tc.health.State, func(t *testing.T) {
			p, _ := New(Options{Name: "t", Source: &healthSource{memSource: newMemSource(0, plain), health: tc.health}, Sink: &memSink{}, Logger: quiet})
			st := p.Status()
			if st.Source == nil || *st.Source != tc.health || st.Degraded != tc.degraded {
				t.Fatalf("status source %+v, degraded %v; want %+v, degraded %v", st.Source, st.Degraded, tc.health, tc.degraded)
			}
		})
	}
	p, _ := New(Options{Name: "t", Source: newMemSource(0, plain), Sink: &memSink{}, Logger: quiet})
	if st := p.Status(); st.Source != nil || st.Degraded {
		t.Fatalf("a source that cannot tell: status source %+v, degraded %v; want none", st.Source, st.Degraded)
	}
}
