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
