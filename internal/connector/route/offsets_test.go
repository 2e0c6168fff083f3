package route

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// A record whose route fails holds back the later records of its
// partition: an exactly-once sink would otherwise store an offset past it
// before on_error has it. Other partitions and earlier records go on.
func TestARecordWhoseRouteFailsHoldsBackTheRestOfItsPartition(t *testing.T) {
	batch := records("o1", "x1", "o2", "r1", "r2")
	batch[4].Partition = 1
	orders, rest := &scriptedSink{}, &scriptedSink{}
	s := New(byValue{}, map[string]connector.Sink{"orders": orders, "rest": rest})
	var be *connector.BatchError
	if err := s.Write(context.Background(), batch); !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	if got := offsets(orders.got); len(got) != 1 || got[0] != 0 {
		t.Errorf("orders got %v, want [0]", got)
	}
	if len(rest.got) != 1 || rest.got[0].Partition != 1 {
		t.Errorf("rest got %v, want only partition 1's record", offsets(rest.got))
	}
	if len(be.Failed) != 1 || be.Failed[0].Record.Offset != 1 {
		t.Errorf("failed %v, want offset 1", be.Failed)
	}
	if got := offsets(be.NotWritten); len(got) != 2 || got[0] != 2 || got[1] != 3 || be.Cause != nil {
		t.Errorf("not written %v (cause %v), want [2 3] to write again at once", got, be.Cause)
	}
}

type storeSink struct {
	scriptedSink
	offs map[int32]int64
}

func (s *storeSink) LoadOffsets(context.Context, string, []int32) (map[int32]int64, error) {
	return maps.Clone(s.offs), nil
}

// With several exactly-once sinks, a partition resumes from the lowest of
// their stored offsets, and one that a sink holds nothing of is left to
// the source (start_from, or the group's offset).
func TestOffsetStoreIsTheLowestPositionOfItsSinks(t *testing.T) {
	a := &storeSink{offs: map[int32]int64{0: 10, 1: 7, 2: 5}}
	b := &storeSink{offs: map[int32]int64{0: 4, 1: 9}}
	s := New(byValue{}, map[string]connector.Sink{"a": a, "b": b, "plain": &scriptedSink{}})
	got, err := s.OffsetStore().LoadOffsets(context.Background(), "t", []int32{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int32]int64{0: 4, 1: 7}; !maps.Equal(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}
	if New(byValue{}, map[string]connector.Sink{"plain": &scriptedSink{}}).OffsetStore() != nil {
		t.Fatal("an offset store without a sink that stores offsets")
	}
}
