package route

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Exactly-once with several sinks.
//
// No transaction spans a database and a Kafka cluster, so the sinks of a
// route cannot share one stored position. Each exactly-once sink keeps its
// own instead, in its own transaction with its rows: a SQL sink in its
// sluice_offsets rows, the Kafka sink as the source group's committed
// offset (at most one Kafka sink per route, as config checks). A sink's
// position for a partition is the offset after the last record routed to
// it that it made durable, so every record routed to it below the
// position is there and none at or above it. A partition resumes from the
// lowest position of the sinks (OffsetStores below; the Kafka source
// takes the lower of that and the group's offset), and each sink skips
// the records below its own position, which it already holds. Routing is
// a pure function of the record, so a record read again goes to the same
// sink. A record that no sink will hold (filtered, or sent to on_error)
// is below some later record's position or read again and handled again;
// a record whose route failed holds back the rest of its partition in the
// batch (Write), so no position passes it before on_error has it.

// OffsetStore returns a connector.OffsetStore over the sinks that keep
// source offsets (exactly-once SQL sinks), or nil when none does.
func (s *Sink) OffsetStore() connector.OffsetStore {
	var stores []namedStore
	for _, name := range s.names {
		if st, ok := s.sinks[name].(connector.OffsetStore); ok {
			stores = append(stores, namedStore{name, st})
		}
	}
	if len(stores) == 0 {
		return nil
	}
	return lowestOffsets(stores)
}

// Sinks returns the named sinks.
func (s *Sink) Sinks() map[string]connector.Sink { return s.sinks }

type namedStore struct {
	name  string
	store connector.OffsetStore
}

// lowestOffsets is, per partition, the lowest next offset of its stores;
// a partition that one of them does not know is left out (that sink holds
// nothing of it, so no stored position is safe to resume from).
type lowestOffsets []namedStore

func (l lowestOffsets) LoadOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error) {
	var low map[int32]int64
	for i, ns := range l {
		offs, err := ns.store.LoadOffsets(ctx, topic, partitions)
		if err != nil {
			return nil, fmt.Errorf("loading the offsets of sink %s: %w", ns.name, err)
		}
		if i == 0 {
			low = offs
			continue
		}
		for p, off := range low {
			o, ok := offs[p]
			switch {
			case !ok:
				delete(low, p)
			case o < off:
				low[p] = o
			}
		}
	}
	return low, nil
}
