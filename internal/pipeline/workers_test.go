package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// newKeyedSource is one partition of n records over keys keys, as a
// topic produced with the default partitioner and one partition holds.
func newKeyedSource(n, keys int) *memSource {
	s := &memSource{acked: map[int64]int{}}
	for i := range n {
		s.records = append(s.records, &connector.Record{Topic: "t", Partition: 0, Offset: int64(i),
			Key: fmt.Appendf(nil, "key-%d", i%keys), Value: []byte("v")})
	}
	return s
}

// orderSink checks, for every key, that offsets arrive strictly
// increasing, and counts what it holds per offset. With failEvery k > 0,
// every k-th write fails: alternately writing nothing, and writing the
// first half of the batch and reporting the rest not written, as a sink
// cut off mid-batch. Deterministic, so that every run has failed writes
// of both kinds (a random 1% left some runs with none).
type orderSink struct {
	failEvery int
	delay     time.Duration

	mu       sync.Mutex
	last     map[string]int64
	written  map[int64]int
	outOfSeq []string
	writes   int
	failures int
	partial  int // failures that wrote a prefix of their batch
	writing  atomic.Int32
	maxConc  atomic.Int32
}

func newOrderSink(failEvery int) *orderSink {
	return &orderSink{failEvery: failEvery, last: map[string]int64{}, written: map[int64]int{}}
}

func (s *orderSink) Write(ctx context.Context, batch []*connector.Record) error {
	n := s.writing.Add(1)
	defer s.writing.Add(-1)
	for {
		m := s.maxConc.Load()
		if n <= m || s.maxConc.CompareAndSwap(m, n) {
			break
		}
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	keep := len(batch)
	fail := s.failEvery > 0 && s.writes%s.failEvery == 0
	if fail {
		s.failures++
		keep = 0
		if s.failures%2 == 0 && len(batch) > 1 {
			s.partial++
			keep = len(batch) / 2
		}
	}
	for _, r := range batch[:keep] {
		k := string(r.Key)
		if last, ok := s.last[k]; ok && r.Offset <= last {
			s.outOfSeq = append(s.outOfSeq, fmt.Sprintf("key %s: offset %d after %d", k, r.Offset, last))
		}
		s.last[k] = r.Offset
		s.written[r.Offset]++
	}
	if fail {
		return &connector.BatchError{NotWritten: batch[keep:], Cause: errors.New("connection reset")}
	}
	return nil
}

func (s *orderSink) Close(context.Context) error { return nil }

func (s *orderSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.written)
}

func TestWorkersByKeyKeepPerKeyOrderThroughFailingWrites(t *testing.T) {
	records, keys := 20_000, 200
	if os.Getenv("SLUICE_LONG") != "" {
		records, keys = 100_000, 1_000
	}
	for _, tc := range []struct {
		name      string
		failEvery int
	}{{"healthy sink", 0}, {"every 20th write fails", 20}} {
		t.Run(tc.name, func(t *testing.T) {
			src := newKeyedSource(records, keys)
			sink := newOrderSink(tc.failEvery)
			sink.delay = 200 * time.Microsecond // writes overlap, even on a starved machine
			const maxInFlight = 4000
			p, err := New(Options{Name: "t", Source: src, Sink: sink, Workers: 16, By: ByKey,
				BatchRecords: 50, MaxPollRecords: 500, MaxInFlightRecords: maxInFlight,
				Linger: 5 * time.Millisecond, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			var peak atomic.Int64
			if err := runUntil(t, p, "every record acked", func() bool {
				inFlight, _ := p.limiter.usage()
				peak.Store(max(peak.Load(), inFlight))
				d, _ := src.ackedCount()
				return d == records
			}); err != nil {
				t.Fatal(err)
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if len(sink.outOfSeq) > 0 {
				t.Fatalf("%d records out of order per key, first: %s", len(sink.outOfSeq), sink.outOfSeq[0])
			}
			for i := range records {
				if n := sink.written[int64(i)]; n != 1 {
					t.Fatalf("offset %d written %d times", i, n)
				}
			}
			// At least 400 writes (records / batch.max_records): 20
			// failures, half of them cut off mid-batch.
			if tc.failEvery > 0 && (sink.failures < 10 || sink.partial < 5) {
				t.Fatalf("%d of %d writes failed, %d of them mid-batch: the test proves little", sink.failures, sink.writes, sink.partial)
			}
			if sink.maxConc.Load() < 2 {
				t.Fatalf("at most %d write at a time with 16 workers", sink.maxConc.Load())
			}
			// The read loop acquires after a read, so one read may pass
			// the cap.
			if got := peak.Load(); got > maxInFlight+500 {
				t.Fatalf("%d records in flight; the cap is %d", got, maxInFlight)
			}
			if _, total := src.ackedCount(); total != records {
				t.Fatalf("%d acks for %d records", total, records)
			}
		})
	}
}

func TestWorkersRoundRobinWriteEverythingOnce(t *testing.T) {
	src := newKeyedSource(5000, 10)
	sink := newOrderSink(20)
	sink.delay = time.Millisecond
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Workers: 8, By: ByRoundRobin,
		BatchRecords: 20, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p, "every record acked", func() bool { d, _ := src.ackedCount(); return d == 5000 }); err != nil {
		t.Fatal(err)
	}
	if sink.count() != 5000 || sink.maxConc.Load() < 2 {
		t.Fatalf("sink holds %d distinct records (want 5000), %d writes at most at a time", sink.count(), sink.maxConc.Load())
	}
}

func TestSlotsAreStableAndSpreadKeys(t *testing.T) {
	// Offsets stored per slot by an earlier run (or another process)
	// are only valid if every process puts a record in the same slot.
	r := &connector.Record{Topic: "films", Partition: 3, Key: []byte("film-42")}
	h := fnv.New32a()
	h.Write(r.Key)
	if got, want := slotOf(r, true), int(h.Sum32()%connector.Slots); got != want || got != 208 {
		t.Fatalf("slot of key film-42 = %d, FNV-1a says %d; changing the hash breaks stored offsets", got, want)
	}
	if a, b := slotOf(&connector.Record{Topic: "films", Partition: 3}, true), slotOf(r, false); a != b {
		t.Fatalf("a record without a key goes by partition: slot %d, by partition %d", a, b)
	}
	used := map[int]bool{}
	for i := range 1000 {
		used[slotOf(&connector.Record{Key: fmt.Appendf(nil, "key-%d", i)}, true)] = true
	}
	if len(used) < 240 {
		t.Fatalf("1000 keys use %d of %d slots", len(used), connector.Slots)
	}
}

func TestPauseAndDrainWaitsForEveryWorker(t *testing.T) {
	src := newKeyedSource(3000, 100)
	sink := newOrderSink(0)
	sink.delay = 2 * time.Millisecond
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Workers: 8, By: ByKey,
		BatchRecords: 20, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for sink.count() < 200 {
		time.Sleep(time.Millisecond)
	}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	resume, err := p.PauseAndDrain(dctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := p.limiter.usage(); n != 0 || sink.writing.Load() != 0 {
		t.Fatalf("drained with %d records in flight and %d writes running", n, sink.writing.Load())
	}
	if d, _ := src.ackedCount(); d != sink.count() {
		t.Fatalf("drained: %d acked, %d in the sink", d, sink.count())
	}
	resume()
	deadline := time.Now().Add(20 * time.Second)
	for sink.count() < 3000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || sink.count() != 3000 {
		t.Fatalf("after resume: %d records, err %v", sink.count(), err)
	}
}

func TestRemovingAConsumerFinishesEveryWorkersWrites(t *testing.T) {
	src := newKeyedSource(4000, 100)
	sink := newOrderSink(0)
	sink.delay = time.Millisecond
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, Workers: 4, By: ByKey,
		BatchRecords: 10, MaxPollRecords: 50, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	removed := atomic.Bool{}
	left := 0
	if err := runUntil(t, p, "every record acked", func() bool {
		// Both consumers open: the first may write before Run has
		// opened the second, and the last one cannot be removed.
		if !removed.Load() && sink.count() > 500 && p.Status().State == StateRunning {
			removed.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.RemoveConsumer(ctx, p.Status().Consumers[0].ID); err != nil {
				t.Errorf("removing a consumer: %v", err)
			}
		}
		d, _ := src.ackedCount()
		left = len(p.Status().Consumers)
		return d == 4000
	}); err != nil {
		t.Fatal(err)
	}
	if !removed.Load() || left != 1 {
		t.Fatalf("removed %v, %d consumers left", removed.Load(), left)
	}
	if _, total := src.ackedCount(); total != 4000 || sink.count() != 4000 {
		t.Fatalf("%d acks, %d records in the sink; want 4000 of each", total, sink.count())
	}
}

// spreadSink is an orderSink that, like the Kafka sink with
// exactly-once, commits offsets per partition with each batch and so
// takes whole batches, spreading them over the workers itself.
type spreadSink struct {
	*orderSink
	workers atomic.Int32 // as WriteSpread was last given
	next    int64        // offset the next batch must start at
	gaps    []string
}

func (s *spreadSink) SpreadsBatches() bool { return true }

func (s *spreadSink) WriteSpread(ctx context.Context, batch []*connector.Record, workers int) error {
	s.workers.Store(int32(workers))
	s.orderSink.mu.Lock()
	for _, r := range batch {
		if r.Offset != s.next {
			s.gaps = append(s.gaps, fmt.Sprintf("offset %d where %d was due", r.Offset, s.next))
		}
		s.next = r.Offset + 1
	}
	s.orderSink.mu.Unlock()
	return s.orderSink.Write(ctx, batch)
}

func (s *spreadSink) Write(context.Context, []*connector.Record) error {
	return errors.New("Write called on a sink that spreads batches")
}

// A sink whose batch commits its partitions' offsets (connector.
// SpreadWriter) gets a consumer's records as whole batches in offset
// order, one write at a time, told the number of workers; with
// round_robin the pipeline refuses to start.
func TestWorkersHandWholeBatchesToASinkThatSpreadsThem(t *testing.T) {
	const records = 5000
	src := newKeyedSource(records, 100)
	sink := &spreadSink{orderSink: newOrderSink(0)}
	sink.delay = 200 * time.Microsecond
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Workers: 8, By: ByKey,
		BatchRecords: 50, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p, "every record acked", func() bool { d, _ := src.ackedCount(); return d == records }); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.gaps) > 0 {
		t.Fatalf("a batch was not the consumer's next records: %s", sink.gaps[0])
	}
	if len(sink.written) != records || sink.maxConc.Load() != 1 || sink.workers.Load() != 8 {
		t.Fatalf("%d distinct records (want %d), %d writes at a time (want 1), told %d workers (want 8)",
			len(sink.written), records, sink.maxConc.Load(), sink.workers.Load())
	}
	for _, r := range src.records {
		if r.Slot != slotOf(r, true) {
			t.Fatalf("offset %d has slot %d, want %d", r.Offset, r.Slot, slotOf(r, true))
		}
	}
	if _, err := New(Options{Name: "t", Source: src, Sink: sink, Workers: 8, By: ByRoundRobin}); err == nil {
		t.Fatal("round_robin into a sink that spreads batches was accepted")
	}
}
