package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// stuckAckSource serves memSource's records; its readers' Ack says when it
// was first called (acking) and blocks until release is closed, as a
// source whose ack or commit is slow.
type stuckAckSource struct {
	*memSource
	acking     chan struct{}
	ackingOnce sync.Once
	release    chan struct{}
}

func (s *stuckAckSource) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	r, _ := s.memSource.OpenReader(ctx, member)
	return &stuckAckReader{Reader: r, s: s}, nil
}

type stuckAckReader struct {
	connector.Reader
	s *stuckAckSource
}

func (r *stuckAckReader) Ack(recs []*connector.Record) {
	r.s.ackingOnce.Do(func() { close(r.s.acking) })
	<-r.s.release
	r.Reader.Ack(recs)
}

// Regression: records_out (and the watermark) moved only once the source's
// ack of a batch returned, so status showed fewer records out than the
// sink already held for as long as the ack took, and whoever waited for
// records_out to reach what was written waited on the source.
func TestStatusCountsRecordsBeforeTheirAck(t *testing.T) {
	const n = 40
	event := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	src := &stuckAckSource{memSource: newMemSource(n, plain), acking: make(chan struct{}), release: make(chan struct{})}
	for i, r := range src.records {
		r.Timestamp = event.Add(time.Duration(i) * time.Second)
	}
	sink := &memSink{}
	p, err := New(Options{Name: "stuck-ack", Source: src, Sink: sink, BatchRecords: n, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	released := false
	t.Cleanup(func() {
		if !released {
			close(src.release)
		}
		cancel()
		<-done
	})
	select {
	case <-src.acking:
	case <-time.After(20 * time.Second):
		t.Fatal("the batch was never acked")
	}
	// The sink wrote the batch in one write and its ack is under way.
	st := p.Status()
	if sink.count() != n || st.RecordsOut != n || st.BytesOut != int64(n*len("ok")) {
		t.Fatalf("the sink holds %d records; status says %d records (%d bytes) out while their ack is pending; want %d (%d bytes)",
			sink.count(), st.RecordsOut, st.BytesOut, n, n*len("ok"))
	}
	written := int64(0)
	for _, pt := range st.EventTime {
		written += pt.Written
	}
	if st.Watermark == nil || written != n {
		t.Fatalf("watermark %v, %d records written by event time while their ack is pending; want a watermark and %d", st.Watermark, written, n)
	}
	if d, _ := src.ackedCount(); d != 0 {
		t.Fatalf("%d records acked before the ack was released", d)
	}
	close(src.release)
	released = true
	waitFor(t, "every record acked", func() bool { d, _ := src.ackedCount(); return d == n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	if st := p.Status(); st.RecordsOut != n || st.Batches != 1 {
		t.Fatalf("after the ack: %d records out in %d batches; want %d in 1 (each counted once)", st.RecordsOut, st.Batches, n)
	}
}
