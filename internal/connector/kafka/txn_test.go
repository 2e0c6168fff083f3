package kafka

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// A batch written exactly once commits, per partition, the offset after
// its last record, and only for partitions its consumer still owns: Kafka
// does not check who commits, so a revoked partition's offset must never
// be sent.
func TestExactlyOnceCommitsOnlyOwnedPartitionsPastTheBatch(t *testing.T) {
	r := &reader{parts: map[topicPartition]*partitionTracker{}}
	kept, gone := newPartitionTracker("in", 0), newPartitionTracker("in", 1)
	kept.r, gone.r = r, r
	r.parts[topicPartition{"in", 0}], r.parts[topicPartition{"in", 1}] = kept, gone
	ck, cg := kept.add(10, 12, 3), gone.add(5, 6, 2)
	var batch []*connector.Record
	for _, off := range []int64{10, 11, 12} {
		batch = append(batch, &connector.Record{Topic: "in", Partition: 0, Offset: off, Origin: ck})
	}
	for _, off := range []int64{5, 6} {
		batch = append(batch, &connector.Record{Topic: "in", Partition: 1, Offset: off, Origin: cg})
	}
	got, owned := ownedRecords(batch)
	if got != r || len(owned) != 5 {
		t.Fatalf("reader %p (want %p), %d owned records, want 5", got, r, len(owned))
	}
	if r.anyRetired(owned) {
		t.Fatal("nothing is retired yet")
	}
	r.retire(map[string][]int32{"in": {1}})
	if !r.anyRetired(owned) {
		t.Fatal("a revoke during the transaction must abort it")
	}
	_, owned = ownedRecords(batch)
	if len(owned) != 3 {
		t.Fatalf("%d owned records after partition 1 was revoked, want 3", len(owned))
	}
	next := nextOffsets(owned)
	if len(next["in"]) != 1 || next["in"][0] != 13 {
		t.Fatalf("offsets to commit %v, want in/0 at 13 only", next)
	}
	if r, owned := ownedRecords([]*connector.Record{{Topic: "x"}}); r != nil || owned != nil {
		t.Fatal("records from another source have no reader")
	}
}
