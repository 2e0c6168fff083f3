package kafka

import (
	"context"
	"errors"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adjustOffsets runs when partitions are assigned, after the group's
// committed offsets are fetched and before fetching starts. With an
// OffsetStore (exactly-once into a database) it resumes every partition
// the store knows from the stored offset, overriding Kafka's.
//
// Every stored position (the sink's or the group's) must lie within the
// partition's log: an offset above the log end (topic recreated, in-memory
// broker restarted) would make Kafka reset the position while an
// exactly-once sink drops every record below its stored offset as already
// written; an offset below the log start means retention deleted records
// before they were read. Both lose records silently, so both stop the
// pipeline with an *OffsetsOutOfRangeError saying how to fix it. Partitions
// without a stored position start where start_from says.
func (r *reader) adjustOffsets(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var stored []StoredOffset
	for topic, parts := range assigned {
		fromStore := map[int32]int64{}
		if r.offsets != nil {
			ps := make([]int32, 0, len(parts))
			for p := range parts {
				ps = append(ps, p)
			}
			offs, err := r.offsets.LoadOffsets(ctx, topic, ps)
			if err != nil {
				return nil, r.failIfPermanent(err)
			}
			fromStore = offs
		}
		for p, o := range parts {
			if r.offsets != nil && r.transactional {
				if st, ok := r.lowerPosition(topic, p, fromStore, o); ok {
					parts[p] = kgo.NewOffset().At(st.Offset).WithEpoch(-1)
					stored = append(stored, st)
				} else {
					parts[p] = r.resetOffset
				}
				continue
			}
			if off, ok := fromStore[p]; ok {
				parts[p] = kgo.NewOffset().At(off).WithEpoch(-1)
				stored = append(stored, StoredOffset{Topic: topic, Partition: p, Offset: off, From: "the sink's sluice_offsets table"})
				continue
			}
			// Negative: nothing committed, the start_from offset.
			if off := o.EpochOffset().Offset; off >= 0 {
				stored = append(stored, StoredOffset{Topic: topic, Partition: p, Offset: off, From: "the committed offset of group " + r.group})
			}
		}
	}
	if len(stored) == 0 {
		return assigned, nil
	}
	select {
	case <-r.clientSet:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	err := checkOffsetsInLog(ctx, kadm.NewClient(r.cl), r.pipeline, stored)
	var oor *OffsetsOutOfRangeError
	if errors.As(err, &oor) {
		return nil, r.failIfPermanent(connector.Permanent(err))
	}
	if err != nil {
		return nil, err // the group session restarts and asks again
	}
	return assigned, nil
}

// failIfPermanent records a permanent err for Read to return, and returns
// err: the group session ends with it, which also wakes a Read that waits.
func (r *reader) failIfPermanent(err error) error {
	if connector.IsPermanent(err) {
		r.fatal.CompareAndSwap(nil, &err)
	}
	return err
}

// fatalErr is the permanent error found by a group callback, if any.
func (r *reader) fatalErr() error {
	if p := r.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// lowerPosition is where a partition resumes when an exactly-once route
// writes both to a database (whose position is in fromStore) and to Kafka
// (whose position is the group's committed offset o, only ever moved by
// the Kafka sink's transactions).
//
// Each sink's position is the offset after the last record it made
// durable: every record routed to it below is there, none at or above.
// Resuming from the lower of the two re-reads what the other sink already
// holds, and each skips it (the database by its stored offset, the Kafka
// sink by the floor recorded here). A partition one of them has no
// position for resumes from start_from: a record routed to that sink may
// be missing anywhere below the other's position (config refuses
// start_from: latest for such routes for that reason).
func (r *reader) lowerPosition(topic string, p int32, fromStore map[int32]int64, o kgo.Offset) (StoredOffset, bool) {
	group := o.EpochOffset().Offset
	r.mu.Lock()
	if group >= 0 {
		r.txnFloor[topicPartition{topic, p}] = group
	} else {
		delete(r.txnFloor, topicPartition{topic, p})
	}
	r.mu.Unlock()
	db, ok := fromStore[p]
	if !ok || group < 0 {
		return StoredOffset{}, false
	}
	if db <= group {
		return StoredOffset{Topic: topic, Partition: p, Offset: db, From: "the sink's sluice_offsets table"}, true
	}
	return StoredOffset{Topic: topic, Partition: p, Offset: group, From: "the committed offset of group " + r.group}, true
}

// aboveFloor returns the records of recs at or above their partition's
// txnFloor: those below it an earlier transaction committed (exactly-once
// routes re-read what the database sink has not yet got).
func (r *reader) aboveFloor(recs []*connector.Record) []*connector.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.txnFloor) == 0 {
		return recs
	}
	return atOrAbove(recs, r.txnFloor)
}
