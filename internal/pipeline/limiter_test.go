package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestInFlightLimiterBlocksUntilRelease(t *testing.T) {
	l := newInFlightLimiter(100, 1000)
	ctx := context.Background()
	if err := l.acquire(ctx, 80, 100); err != nil {
		t.Fatal(err)
	}
	acquired := make(chan struct{})
	go func() {
		if err := l.acquire(ctx, 30, 100); err == nil {
			close(acquired)
		}
	}()
	select {
	case <-acquired:
		t.Fatal("acquired 30 more records with 80 of 100 in flight")
	case <-time.After(50 * time.Millisecond):
	}
	l.release(80, 100)
	select {
	case <-acquired:
	case <-time.After(5 * time.Second):
		t.Fatal("acquire still blocked after release")
	}
	if r, b := l.usage(); r != 30 || b != 100 {
		t.Fatalf("usage = %d records %d bytes, want 30, 100", r, b)
	}
}

func TestInFlightLimiterBytes(t *testing.T) {
	l := newInFlightLimiter(1000, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := l.acquire(ctx, 1, 900); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire(ctx, 1, 200); err == nil {
		t.Fatal("acquired past the byte limit")
	}
}

func TestInFlightLimiterLetsOneOversizedReadThrough(t *testing.T) {
	l := newInFlightLimiter(10, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// A single read larger than the limit must not wedge the pipeline.
	if err := l.acquire(ctx, 50, 5000); err != nil {
		t.Fatalf("oversized read with nothing in flight: %v", err)
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	b := newBackoff()
	var last time.Duration
	for i := 0; i < 40; i++ {
		d := b.next()
		if d > b.max {
			t.Fatalf("step %d: %v exceeds max %v", i, d, b.max)
		}
		if d <= 0 {
			t.Fatalf("step %d: non-positive backoff %v", i, d)
		}
		last = d
	}
	if last < b.max/2 {
		t.Fatalf("after 40 steps backoff is %v, want at least %v", last, b.max/2)
	}
}

// Decoded records weigh more than their bytes; when the batch being built
// already holds the whole cap, it is sent to the writer instead of the
// read loop waiting for a release that could never come.
func TestDecodedWeightCountsAndNeverWedges(t *testing.T) {
	src := newMemSource(2000, func(i int) string { return fmt.Sprintf(`{"id":%d,"name":"n","price":1}`, i) })
	sink := &memSink{}
	// A byte cap that ten decoded records fill, far below one batch.
	// Reads of 5 records: what may overshoot the cap is one read.
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Decoder: fieldsDecoder{}, BatchRecords: 1000, MaxPollRecords: 5,
		MaxInFlightBytes: 10 * (3*80 + 40), Linger: 50 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	maxBytes := int64(0)
	sink.onWrite = func() {
		_, b := p.limiter.usage()
		maxBytes = max(maxBytes, b)
	}
	if err := runUntil(t, p, "all written", func() bool { return sink.count() == 2000 }); err != nil {
		t.Fatal(err)
	}
	if r, b := p.limiter.usage(); r != 0 || b != 0 {
		t.Fatalf("after everything was written the limiter holds %d records, %d bytes", r, b)
	}
	if maxBytes > 2*10*(3*80+40) {
		t.Fatalf("in flight reached %d bytes with a cap of %d", maxBytes, 10*(3*80+40))
	}
	limit := 0
	for _, h := range p.Status().RecentBatches {
		if h.Trigger == "limit" {
			limit++
		}
	}
	if limit == 0 {
		t.Fatal("no batch was cut by the in-flight limit")
	}
}
