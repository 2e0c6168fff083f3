package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func plain(int) string { return "ok" }

// runUntil runs p until cond holds, then stops it and returns Run's error.
func runUntil(t *testing.T, p *Pipeline, what string, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	cancel()
	return <-done
}

func TestBatchesAreBoundedAndEverythingIsAcked(t *testing.T) {
	src := newMemSource(1000, plain)
	sink := &memSink{}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p, "1000 records acked", func() bool { d, _ := src.ackedCount(); return d == 1000 }); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 1000 {
		t.Fatalf("sink holds %d records, want 1000", sink.count())
	}
	for _, n := range sink.batches {
		if n > 100 {
			t.Fatalf("a batch of %d records; batch.max_records is 100", n)
		}
	}
	if _, total := src.ackedCount(); total != 1000 {
		t.Fatalf("%d acks for 1000 records; each must be acked once", total)
	}
}

func TestBatchesNeverExceedMaxRecordsWhenReadsDoNotAlign(t *testing.T) {
	src := newMemSource(10000, plain)
	sink := &memSink{}
	// Reads of up to 70 records against batches of 100: a naive batcher
	// would append a second read of 70 to 70 and write 140.
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 100, MaxPollRecords: 70, Linger: time.Second, Logger: quiet})
	if err := runUntil(t, p, "all written", func() bool { return sink.count() == 10000 }); err != nil {
		t.Fatal(err)
	}
	for _, n := range sink.batches {
		if n > 100 {
			t.Fatalf("a batch of %d records; batch.max_records is 100", n)
		}
	}
}

func TestLingerFlushesAPartialBatch(t *testing.T) {
	src := newMemSource(5, plain)
	sink := &memSink{}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 1000, Linger: 20 * time.Millisecond, Logger: quiet})
	start := time.Now()
	if err := runUntil(t, p, "5 records written", func() bool { return sink.count() == 5 }); err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 1 {
		t.Fatalf("batches = %v, want one batch of 5", sink.batches)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("a partial batch was written before the linger elapsed")
	}
}

func TestTransientSinkFailuresAreRetried(t *testing.T) {
	src := newMemSource(300, plain)
	sink := &memSink{}
	sink.failFirst.Store(2)
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 100, Logger: quiet})
	if err := runUntil(t, p, "all acked", func() bool { d, _ := src.ackedCount(); return d == 300 }); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 300 {
		t.Fatalf("sink holds %d, want 300", sink.count())
	}
	if st := p.Status(); st.Retries < 2 {
		t.Fatalf("retries = %d, want >= 2", st.Retries)
	}
}

// A sink with a prepare stage gets each batch's own prepared result, on
// retries too, and everything is still written and acked once.
func TestPreparedBatchesReachTheirWrite(t *testing.T) {
	src := newMemSource(3000, plain)
	sink := &prepSink{}
	sink.failFirst.Store(3)
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err := runUntil(t, p, "all acked", func() bool { d, _ := src.ackedCount(); return d == 3000 }); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 3000 {
		t.Fatalf("sink holds %d, want 3000", sink.count())
	}
	if _, total := src.ackedCount(); total != 3000 {
		t.Fatalf("%d acks for 3000 records", total)
	}
	if n := sink.prepared.Load(); n < 30 {
		t.Fatalf("Prepare called %d times for at least 30 batches", n)
	}
	if m, u := sink.mismatched.Load(), sink.unprepared.Load(); m+u > 0 {
		t.Fatalf("%d writes got another batch's prepared result, %d got none", m, u)
	}
}

func TestNothingIsAckedBeforeTheSinkSucceeds(t *testing.T) {
	src := newMemSource(50, plain)
	sink := &memSink{block: make(chan struct{})}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 10, Linger: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "a sink write in progress", func() bool { return sink.writing.Load() > 0 })
	if d, _ := src.ackedCount(); d != 0 {
		t.Fatalf("%d records acked while the sink write is still in progress", d)
	}
	close(sink.block)
	waitFor(t, "every record acked", func() bool { d, _ := src.ackedCount(); return d == 50 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, _ := src.ackedCount(); d != 50 {
		t.Fatalf("acked %d, want 50", d)
	}
}

func TestInFlightIsBoundedWhileTheSinkIsStuck(t *testing.T) {
	src := newMemSource(100000, plain)
	sink := &memSink{block: make(chan struct{})}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, BatchRecords: 500, MaxInFlightRecords: 2000, Linger: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // let the reader run into the limit
	st := p.Status()
	if st.InFlightRecords > 2000+500 {
		t.Fatalf("%d records in flight with a 2000 limit (one read of 500 may overshoot)", st.InFlightRecords)
	}
	if st.RecordsIn > 2500 {
		t.Fatalf("read %d records while the sink was stuck; reading must stop at the limit", st.RecordsIn)
	}
	close(sink.block)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBadRecords(t *testing.T) {
	value := func(i int) string {
		if i%10 == 3 {
			return "bad"
		}
		return "ok"
	}
	t.Run("skip counts and acks them", func(t *testing.T) {
		src := newMemSource(100, value)
		sink := &memSink{}
		p, _ := New(Options{Name: "t", Source: src, Sink: sink, Decoder: rejectDecoder{}, OnError: OnErrorSkip, Logger: quiet})
		if err := runUntil(t, p, "all acked", func() bool { d, _ := src.ackedCount(); return d == 100 }); err != nil {
			t.Fatal(err)
		}
		if st := p.Status(); st.Skipped != 10 || sink.count() != 90 {
			t.Fatalf("skipped %d, written %d; want 10 and 90", st.Skipped, sink.count())
		}
	})
	t.Run("dlq gets them with the reason", func(t *testing.T) {
		src := newMemSource(100, value)
		sink := &memSink{}
		dlq := &memDLQ{}
		p, _ := New(Options{Name: "t", Source: src, Sink: sink, Decoder: rejectDecoder{}, OnError: OnErrorDLQ, DeadLetter: dlq, Logger: quiet})
		if err := runUntil(t, p, "all acked", func() bool { d, _ := src.ackedCount(); return d == 100 }); err != nil {
			t.Fatal(err)
		}
		if len(dlq.records) != 10 || sink.count() != 90 {
			t.Fatalf("dlq %d, written %d; want 10 and 90 (in = out + dlq)", len(dlq.records), sink.count())
		}
		if !strings.Contains(dlq.reasons[0].Error(), "invalid character") {
			t.Fatalf("dlq reason %q does not say what was wrong", dlq.reasons[0])
		}
	})
	// Regression: a dead letter refused for good (too large even cut,
	// not authorized) was retried forever and stalled the partition.
	t.Run("a dead letter refused for good stops the pipeline", func(t *testing.T) {
		src := newMemSource(100, value)
		dlq := &memDLQ{refuse: connector.Permanent(errors.New("producing to dead-letter topic t.dlq: TOPIC_AUTHORIZATION_FAILED"))}
		p, _ := New(Options{Name: "t", Source: src, Sink: &memSink{}, Decoder: rejectDecoder{}, OnError: OnErrorDLQ, DeadLetter: dlq, Logger: quiet})
		err := runUntil(t, p, "failure", func() bool { return false })
		if err == nil || !strings.Contains(err.Error(), "t/0@3") || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
			t.Fatalf("err = %v; want a failure naming record t/0@3 and the dead-letter error", err)
		}
		if dlq.tries != 1 {
			t.Fatalf("dead letter tried %d times, want 1: a permanent error is not retried", dlq.tries)
		}
		if d, _ := src.ackedCount(); d > 3 {
			t.Fatalf("%d records acked; nothing at or after the bad record may be committed", d)
		}
	})
	t.Run("fail stops with the record named", func(t *testing.T) {
		src := newMemSource(100, value)
		p, _ := New(Options{Name: "t", Source: src, Sink: &memSink{}, Decoder: rejectDecoder{}, OnError: OnErrorFail, Logger: quiet})
		err := runUntil(t, p, "failure", func() bool { return false })
		if err == nil || !strings.Contains(err.Error(), "t/0@3") {
			t.Fatalf("err = %v; want a failure naming record t/0@3", err)
		}
		if p.Status().State != StateFailed {
			t.Fatalf("state = %s, want failed", p.Status().State)
		}
		if d, _ := src.ackedCount(); d > 3 {
			t.Fatalf("%d records acked; nothing at or after the bad record may be committed", d)
		}
	})
	t.Run("sink rejects some rows of a batch", func(t *testing.T) {
		src := newMemSource(100, plain)
		sink := &memSink{reject: func(r *connector.Record) bool { return r.Offset == 42 }}
		dlq := &memDLQ{}
		p, _ := New(Options{Name: "t", Source: src, Sink: sink, OnError: OnErrorDLQ, DeadLetter: dlq, Logger: quiet})
		if err := runUntil(t, p, "all acked", func() bool { d, _ := src.ackedCount(); return d == 100 }); err != nil {
			t.Fatal(err)
		}
		if len(dlq.records) != 1 || dlq.records[0].Offset != 42 || sink.count() != 99 {
			t.Fatalf("dlq %d (first offset %v), written %d; want only offset 42 dead-lettered", len(dlq.records), dlq.records, sink.count())
		}
		if st := p.Status(); st.RecordsOut != 99 || st.DeadLettered != 1 {
			t.Fatalf("status out %d dlq %d; want 99 and 1 (in = out + dlq)", st.RecordsOut, st.DeadLettered)
		}
	})
}

func TestPauseAndDrainStopsWrites(t *testing.T) {
	src := newMemSource(200000, plain)
	var writesWhilePaused atomic.Int32
	var p *Pipeline
	sink := &memSink{}
	var drained atomic.Bool
	sink.onWrite = func() {
		if drained.Load() {
			writesWhilePaused.Add(1)
		}
	}
	p, _ = New(Options{Name: "t", Source: src, Sink: sink, Consumers: 3, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for sink.count() < 1000 {
		time.Sleep(time.Millisecond)
	}
	resume, err := p.PauseAndDrain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drained.Store(true)
	in := p.Status().InFlightRecords
	before := sink.count()
	time.Sleep(100 * time.Millisecond)
	drained.Store(false)
	if writesWhilePaused.Load() != 0 || sink.count() != before {
		t.Fatalf("%d writes (%d records) happened while paused and drained", writesWhilePaused.Load(), sink.count()-before)
	}
	if in != 0 {
		t.Fatalf("%d records in flight after drain", in)
	}
	resume()
	for sink.count() == before {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
