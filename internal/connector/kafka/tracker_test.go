package kafka

import "testing"

func TestPartitionTrackerOutOfOrderAcks(t *testing.T) {
	tr := newPartitionTracker("films", 0)
	a := tr.add(0, 9, 10)
	b := tr.add(10, 19, 10)
	c := tr.add(20, 24, 5)

	if _, ok := tr.commitOffset(); ok {
		t.Fatal("nothing acked, but a commit offset is offered")
	}
	// The later chunks finish first: nothing may be committed past the
	// first unfinished chunk.
	c.ack(5)
	b.ack(10)
	if off, ok := tr.commitOffset(); ok {
		t.Fatalf("commit offset %d offered while offsets 0-9 are unacked", off)
	}
	a.ack(4)
	if _, ok := tr.commitOffset(); ok {
		t.Fatal("commit offered with part of the first chunk unacked")
	}
	a.ack(6)
	off, ok := tr.commitOffset()
	if !ok || off != 25 {
		t.Fatalf("commit offset = %d, %v; want 25 (everything acked)", off, ok)
	}
	if tr.pending() != 0 {
		t.Fatalf("pending = %d, want 0", tr.pending())
	}
}

func TestPartitionTrackerStopsAtGap(t *testing.T) {
	tr := newPartitionTracker("films", 3)
	a := tr.add(100, 104, 5)
	b := tr.add(105, 109, 5)
	c := tr.add(110, 114, 5)
	a.ack(5)
	c.ack(5)
	if off, _ := tr.commitOffset(); off != 105 {
		t.Fatalf("commit offset = %d, want 105 (chunk 105-109 still in flight)", off)
	}
	tr.committed = 105
	if _, ok := tr.commitOffset(); ok {
		t.Fatal("an already committed offset is offered again")
	}
	b.ack(5)
	if off, ok := tr.commitOffset(); !ok || off != 115 {
		t.Fatalf("commit offset = %d, %v; want 115", off, ok)
	}
}

func TestRetiredTrackerRefusesAcks(t *testing.T) {
	tr := newPartitionTracker("films", 1)
	a := tr.add(0, 9, 10)
	tr.retired = true // revoked: the partition belongs to another member now
	if a.ack(10) {
		t.Fatal("ack accepted for a revoked partition")
	}
	if _, ok := tr.commitOffset(); ok {
		t.Fatal("commit offered for a revoked partition")
	}
}

func TestTrackerCompactsAckedChunks(t *testing.T) {
	tr := newPartitionTracker("films", 0)
	for i := int64(0); i < 10000; i++ {
		tr.add(i, i, 1).ack(1)
	}
	if len(tr.chunks) > 200 {
		t.Fatalf("chunk queue holds %d entries after everything was acked; memory would grow without bound", len(tr.chunks))
	}
	if off, _ := tr.commitOffset(); off != 10000 {
		t.Fatalf("commit offset = %d, want 10000", off)
	}
}

func TestTrackerLag(t *testing.T) {
	tr := newPartitionTracker("films", 0)
	tr.hwm = 1000
	a := tr.add(0, 99, 100)
	if l := tr.lag(); l != 1000 {
		t.Fatalf("lag before any ack = %d, want 1000", l)
	}
	a.ack(100)
	if l := tr.lag(); l != 900 {
		t.Fatalf("lag = %d, want 900", l)
	}
}

// Transaction markers read by a bounded source are a chunk without
// records: the committable position moves past them, but only once every
// record read before them is acked.
func TestPartitionTrackerPassesMarkersAfterEarlierRecords(t *testing.T) {
	tr := newPartitionTracker("films", 0)
	a := tr.add(0, 9, 10)
	b := tr.add(10, 15, 5) // 10-14 records, 15 a commit marker
	markers := tr.add(16, 16, 0)
	markers.ack(0)
	if off, ok := tr.commitOffset(); ok {
		t.Fatalf("commit offset %d offered past a marker while records before it are unacked", off)
	}
	a.ack(10)
	b.ack(5)
	if off, ok := tr.commitOffset(); !ok || off != 17 {
		t.Fatalf("commit offset = %d, %v; want 17 (past the markers)", off, ok)
	}
}
