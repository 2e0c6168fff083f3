package bigquery

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
)

// eosRecords makes n records of topic "orders", partition p, from offset
// first, spread round robin over tables t0..t<tables-1>.
func eosRecords(t *testing.T, p int32, first int64, n, tables int) []*connector.Record {
	t.Helper()
	var out []*connector.Record
	for i := range n {
		o := first + int64(i)
		r := jsonRecord(t, "orders", o, fmt.Sprintf(`{"dest":"t%d","id":%d}`, int(o)%tables, int64(p)*1_000_000+o))
		r.Partition = p
		out = append(out, r)
	}
	return out
}

func eosSink(t *testing.T, addrs bqemu.Addrs) *Sink {
	t.Helper()
	return newSinkWith(t, Options{Config: sinkConfig(addrs, "{{.Value.dest}}"), ExactlyOnce: true})
}

// heldOnce checks that tables t0..t<tables-1> together hold ids exactly
// once each, and nothing else.
func heldOnce(t *testing.T, e *bqemu.Emulator, tables int, recs []*connector.Record) {
	t.Helper()
	got := map[int64]int{}
	for i := range tables {
		for id, n := range countIDs(t, e, fmt.Sprintf("t%d", i)) {
			got[id] += n
		}
	}
	for _, r := range recs {
		id := int64(r.Partition)*1_000_000 + r.Offset
		if got[id] != 1 {
			t.Errorf("record %d@%d held %d times, want 1", r.Partition, r.Offset, got[id])
		}
		delete(got, id)
	}
	if len(got) > 0 {
		t.Errorf("%d rows that were never written", len(got))
	}
}

// A batch whose commit fails commits nothing, in no table; the engine's
// retry of what was reported not written commits it once.
func TestExactlyOnceFailedCommitCommitsNothingAndRetryOnce(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	s := eosSink(t, addrs)
	batch := eosRecords(t, 0, 0, 30, 3)
	write(t, s, eosRecords(t, 1, 0, 3, 3)) // tables exist; partition 1 only
	if err := e.SetFaults(bqemu.Faults{CommitNext: 1000}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Write(ctx, batch)
	var be *connector.BatchError
	if !errors.As(err, &be) || len(be.NotWritten) != len(batch) || len(be.Failed) != 0 {
		t.Fatalf("Write with every commit failing: %v; want all %d records NotWritten", err, len(batch))
	}
	if e.Faults().CommitNext == 1000 {
		t.Fatal("no commit was tried within the write's 5 s")
	}
	for i := range 3 {
		if n := len(countIDs(t, e, fmt.Sprintf("t%d", i))); n != 1 {
			t.Fatalf("table t%d holds %d rows after failed commits, want the 1 of partition 1", i, n)
		}
	}
	if err := e.SetFaults(bqemu.Faults{}); err != nil {
		t.Fatal(err)
	}
	if failed := write(t, s, be.NotWritten); len(failed) != 0 {
		t.Fatalf("retry: %v", failed)
	}
	// A replay of the whole batch (a restart from an older Kafka offset)
	// adds nothing.
	write(t, s, batch)
	heldOnce(t, e, 3, append(batch, eosRecords(t, 1, 0, 3, 3)...))
}

// A new process (a fresh sink, as after a kill between two tables'
// commits) learns from BigQuery what each table holds and skips it.
func TestExactlyOnceRestartSkipsWhatBigQueryHolds(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	first := eosSink(t, addrs)
	batch := eosRecords(t, 0, 0, 40, 4)
	write(t, first, batch[:25])
	first.Close(context.Background())

	second := eosSink(t, addrs)
	write(t, second, batch) // replayed from offset 0
	heldOnce(t, e, 4, batch)
	if st := second.Stats(); st.Skipped != 25 || st.RowsAppended != 15 {
		t.Fatalf("skipped %d records and committed %d rows, want the 25 already committed skipped and 15 committed", st.Skipped, st.RowsAppended)
	}
}

// When a partition comes back to this process after another one wrote it,
// what this process knew of it is stale: LoadOffsets (called by the Kafka
// source on assignment) makes it ask BigQuery again.
func TestExactlyOnceReassignedPartitionIsAskedAgain(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	a := eosSink(t, addrs)
	b := eosSink(t, addrs)
	recs := eosRecords(t, 0, 0, 30, 1)
	write(t, a, recs[:10])
	write(t, b, recs[:20]) // b owned it meanwhile: skips 0-9, writes 10-19
	if _, err := a.LoadOffsets(context.Background(), "orders", []int32{0}); err != nil {
		t.Fatal(err)
	}
	write(t, a, recs[10:]) // back at a from the group's offset 10
	heldOnce(t, e, 1, recs)
}

// Pending streams are not multiplexed: however many tables a batch
// writes, no more than max_connections AppendRows streams are open.
func TestExactlyOncePendingStreamsStayWithinMaxConnections(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{MaxConnections: 2})
	cfg := sinkConfig(addrs, "{{.Value.dest}}")
	cfg.MaxConnections = 2
	s := newSinkWith(t, Options{Config: cfg, ExactlyOnce: true})
	batch := eosRecords(t, 0, 0, 200, 20)
	if failed := write(t, s, batch); len(failed) != 0 {
		t.Fatalf("Write: %v", failed)
	}
	heldOnce(t, e, 20, batch)
	// The emulator refuses a third stream; the sink opens at most two at
	// once, but a stream it closed may still be ending on the server when
	// the next one opens (under load), and that refusal is retried. A sink
	// opening a stream per table at once would see most of its 20 refused.
	st := e.Stats()
	if st.RejectedStreams >= 5 {
		t.Fatalf("%d AppendRows streams refused over the quota of 2 (peak %d); the sink opens more than max_connections at once", st.RejectedStreams, st.PeakStreams)
	}
	if c := s.Stats().Commits; c != 20 {
		t.Fatalf("%d commits, want one per table (20)", c)
	}
}

// Appends that fail transiently (an error answer, or the AppendRows call
// cut as by a server restart) are written again on new PENDING streams:
// what the failed streams held is never committed, so every record lands
// once.
func TestExactlyOnceTransientAppendFaultsLandOnce(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{Code: codes.Unavailable, Rate: 0.2})
	s := eosSink(t, addrs)
	var all []*connector.Record
	for i := range 6 {
		if i == 3 {
			e.SetFaults(bqemu.Faults{Code: codes.Unavailable, Next: 3, Terminate: true})
		}
		batch := eosRecords(t, 0, int64(i)*50, 50, 5)
		if failed := write(t, s, batch); len(failed) != 0 {
			t.Fatalf("Write: %v", failed)
		}
		all = append(all, batch...)
	}
	heldOnce(t, e, 5, all)
	if est, st := e.Stats(), s.Stats(); est.FaultsInjected < 3 || st.Retries < est.FaultsInjected {
		t.Fatalf("faults injected %d, retries %d: want every fault retried", est.FaultsInjected, st.Retries)
	}
}
