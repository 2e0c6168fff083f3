// Package conformance states the sink contract (connector.Sink) as tests.
// Every sink runs them against its real server (PostgreSQL, MariaDB,
// SQLite, the Kafka broker, pstest, the BigQuery emulator, a file): a new
// connector cannot land without a harness here.
//
// What the suite checks, for batches with bad records first, in the
// middle, last, and only bad ones:
//
//   - exactly the good records become durable, each once;
//   - every bad record is reported rejected (with a reason) and no good one
//     is;
//   - records reported neither durable nor rejected are written when the
//     write is repeated with only them, as the engine does;
//   - a sink that stores source offsets with the data (exactly-once) never
//     stores one past a record it rejected before that record was routed;
//   - writing a durable batch again duplicates nothing in exactly-once mode
//     (and loses nothing in at-least-once mode);
//   - a write whose context has ended claims nothing it did not do;
//   - Close leaves every acknowledged record durable.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Key identifies a source record: sinks keep the partition and offset (in
// columns, headers or fields) so the suite can tell records apart.
type Key struct {
	Partition int32
	Offset    int64
}

func (k Key) String() string { return fmt.Sprintf("%d@%d", k.Partition, k.Offset) }

// KeyOf is the Key of rec.
func KeyOf(rec *connector.Record) Key { return Key{rec.Partition, rec.Offset} }

// Target is one sink over a fresh destination (a new table, topic or
// file), with the means to make records for it and to read back what the
// destination holds.
type Target struct {
	Sink connector.Sink
	// Records returns a batch of new records (never offered before), in
	// order, where bad[i] says whether record i must be rejected as bad
	// input by this sink. Records are spread over several partitions with
	// offsets increasing within each.
	Records func(t *testing.T, bad []bool) []*connector.Record
	// Held reads the destination and says how many times it holds each
	// record (only committed data: a read_committed consumer, a SELECT
	// after commit, ...).
	Held func(t *testing.T) map[Key]int
	// Stored is set for sinks that store source offsets with the data
	// (exactly-once): the next offset stored per partition.
	Stored func(t *testing.T) map[int32]int64
	// ExactlyOnce: a repeated write must not duplicate anything.
	ExactlyOnce bool
}

// Harness opens a Target; the suite calls it once per case, and the
// harness cleans up with t.Cleanup.
type Harness func(t *testing.T) Target

// Run runs the whole suite on h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	shapes := []struct {
		name string
		bad  []bool
	}{
		{"all good", pattern(12, nil)},
		{"bad first", pattern(12, []int{0})},
		{"bad in the middle", pattern(12, []int{5})},
		{"bad last", pattern(12, []int{11})},
		{"bad in every partition", pattern(12, []int{1, 5, 9})},
		{"all bad", pattern(6, []int{0, 1, 2, 3, 4, 5})},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) { badRecords(t, h(t), sh.bad) })
	}
	t.Run("repeated write of a durable batch", func(t *testing.T) { repeatedWrite(t, h(t)) })
	t.Run("write after its context ended", func(t *testing.T) { cancelledWrite(t, h(t)) })
	t.Run("close keeps what was acknowledged", func(t *testing.T) { closeKeeps(t, h(t)) })
}

func pattern(n int, badAt []int) []bool {
	bad := make([]bool, n)
	for _, i := range badAt {
		bad[i] = true
	}
	return bad
}

func context30s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// settle writes batch the way the engine does: repeat with what is not
// written until every record is durable or rejected. It returns the
// rejected records and checks, after the first write that rejected some,
// that no stored offset passed them.
func settle(t *testing.T, tg Target, batch []*connector.Record) map[Key]*connector.RecordError {
	t.Helper()
	ctx := context30s(t)
	rejected := map[Key]*connector.RecordError{}
	pending := batch
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d records still not written after 20 writes", len(pending))
		}
		err := tg.Sink.Write(ctx, pending)
		if err == nil {
			return rejected
		}
		var be *connector.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("write %d of %d records: %v (a failure the suite did not cause)", attempt+1, len(pending), err)
		}
		if be.Cause != nil {
			t.Fatalf("write %d: %d records not written because of %v (a failure the suite did not cause)", attempt+1, len(be.NotWritten), be.Cause)
		}
		if len(be.Released) > 0 {
			t.Fatalf("write %d: %d records released; the suite moved no partition", attempt+1, len(be.Released))
		}
		for _, re := range be.Failed {
			if re == nil || re.Record == nil {
				t.Fatalf("write %d: a rejection that names no record: %v", attempt+1, err)
			}
			k := KeyOf(re.Record)
			if rejected[k] != nil {
				t.Fatalf("record %s rejected twice", k)
			}
			if re.Reason == "" || re.Err == nil {
				t.Errorf("record %s rejected without a reason: %v", k, re)
			}
			rejected[k] = re
		}
		if len(be.Failed) > 0 && tg.Stored != nil {
			noOffsetPasses(t, tg.Stored(t), be.Failed)
		}
		pending = be.NotWritten
	}
	return rejected
}

// noOffsetPasses checks that no stored next offset is past a record
// rejected but not yet routed.
func noOffsetPasses(t *testing.T, stored map[int32]int64, failed []*connector.RecordError) {
	t.Helper()
	for _, re := range failed {
		if next, ok := stored[re.Record.Partition]; ok && next > re.Record.Offset {
			t.Errorf("stored offset %d for partition %d passes rejected record %s before it was routed", next, re.Record.Partition, KeyOf(re.Record))
		}
	}
}

func badRecords(t *testing.T, tg Target, bad []bool) {
	batch := tg.Records(t, bad)
	if len(batch) != len(bad) {
		t.Fatalf("harness made %d records, asked for %d", len(batch), len(bad))
	}
	rejected := settle(t, tg, batch)
	want := map[Key]int{}
	for i, rec := range batch {
		k := KeyOf(rec)
		switch {
		case bad[i] && rejected[k] == nil:
			t.Errorf("bad record %s was not reported rejected", k)
		case !bad[i] && rejected[k] != nil:
			t.Errorf("good record %s was rejected: %v", k, rejected[k])
		case !bad[i]:
			want[k] = 1
		}
	}
	sameHeld(t, tg.Held(t), want, false)
}

func repeatedWrite(t *testing.T, tg Target) {
	batch := tg.Records(t, pattern(9, nil))
	settle(t, tg, batch)
	settle(t, tg, batch)
	want := map[Key]int{}
	for _, rec := range batch {
		want[KeyOf(rec)] = 1
	}
	sameHeld(t, tg.Held(t), want, !tg.ExactlyOnce)
}

func cancelledWrite(t *testing.T, tg Target) {
	batch := tg.Records(t, pattern(9, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tg.Sink.Write(ctx, batch)
	claimed := batch
	if err != nil {
		var be *connector.BatchError
		if errors.As(err, &be) {
			claimed = be.Durable(batch)
		} else {
			claimed = nil
		}
	}
	held := tg.Held(t)
	for _, rec := range claimed {
		if held[KeyOf(rec)] == 0 {
			t.Errorf("a write with an ended context claimed %s durable, and the destination does not hold it", KeyOf(rec))
		}
	}
	// The engine then writes the batch again (the source re-reads it).
	settle(t, tg, batch)
	want := map[Key]int{}
	for _, rec := range batch {
		want[KeyOf(rec)] = 1
	}
	sameHeld(t, tg.Held(t), want, !tg.ExactlyOnce)
}

func closeKeeps(t *testing.T, tg Target) {
	batch := tg.Records(t, pattern(9, nil))
	settle(t, tg, batch)
	if err := tg.Sink.Close(context30s(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	want := map[Key]int{}
	for _, rec := range batch {
		want[KeyOf(rec)] = 1
	}
	sameHeld(t, tg.Held(t), want, false)
}

// sameHeld compares what the destination holds with want; with
// duplicatesAllowed, a record held more than once is fine (at least once).
func sameHeld(t *testing.T, held, want map[Key]int, duplicatesAllowed bool) {
	t.Helper()
	for k, n := range want {
		switch got := held[k]; {
		case got == 0:
			t.Errorf("record %s is not in the destination (lost)", k)
		case got > n && !duplicatesAllowed:
			t.Errorf("record %s is in the destination %d times, want %d", k, got, n)
		}
	}
	for k, n := range held {
		if want[k] == 0 {
			t.Errorf("the destination holds record %s (%d times), which it should not", k, n)
		}
	}
}

// onceSink closes its sink once, whoever asks first: the suite's close
// case or the harness's cleanup.
type onceSink struct {
	connector.Sink
	once sync.Once
	err  error
}

func (s *onceSink) Close(ctx context.Context) error {
	s.once.Do(func() { s.err = s.Sink.Close(ctx) })
	return s.err
}

// Owned wraps sink so that it is closed at the end of the test (once, even
// when the suite closes it first).
func Owned(t *testing.T, sink connector.Sink) connector.Sink {
	s := &onceSink{Sink: sink}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// Spread makes n records of topic over three partitions, offsets from
// first on, increasing within each partition; fill sets each one's
// content (good or bad).
func Spread(topic string, first int64, bad []bool, fill func(rec *connector.Record, bad bool)) []*connector.Record {
	out := make([]*connector.Record, len(bad))
	for i := range bad {
		rec := &connector.Record{Topic: topic, Partition: int32(i % 3), Offset: first + int64(i), Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))}
		fill(rec, bad[i])
		out[i] = rec
	}
	return out
}
