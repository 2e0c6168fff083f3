package sql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Exactly-once with parallelism (delivery: exactly_once and parallelism
// with by: key or partition).
//
// Several workers write the records of one partition at the same time, so
// one next offset per partition would be wrong: a worker that commits
// offset 900 would make a restart skip the records below 900 another
// worker had not committed yet. The engine instead puts every record in
// one of connector.Slots slots (a hash of its key, or of its partition),
// and one worker writes all the records of a (topic, partition, slot), in
// offset order. So, per slot, everything at or below the highest offset
// written is written, and that is what the sink stores, in
// sluice_slot_offsets(pipeline, topic, partition, slot, next_offset), in
// the same transaction as the rows. A record below its slot's stored next
// offset is skipped as already written.
//
// Where to resume is then the consumer group's committed offset: the
// Kafka source commits a position only when every record below it is
// acked, and the engine acks a record only once it is durable. Records
// read again above it are deduplicated per slot. The partition's row in
// sluice_offsets, left by a run without parallelism or by `sluice offsets
// reset`, is where a partition without slot rows resumes, and a floor for
// every slot (records below it are written).
//
// A run without parallelism over offsets stored per slot would skip or
// duplicate records, so it refuses to start (see checkNoSlots).

// partSlot is one row of sluice_slot_offsets for a topic.
type partSlot struct {
	partition int32
	slot      int
}

func (b *bookkeeping) slotsDDL() string {
	q, key := b.d.q.ident, b.d.keyText
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (pipeline %s NOT NULL, topic %s NOT NULL, %s integer NOT NULL, slot integer NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (pipeline, topic, %s, slot))`,
		b.slotOffsets, key, key, q("partition"), q("partition"))
}

// lockSlotOffsets locks the slot rows of keys (creating them first, so
// that two writers of one slot always meet on a row lock: a zombie
// consumer of a revoked partition and its new owner) and returns their
// next offsets, at least the partition's floor. Rows are locked in order,
// which keeps two such transactions from deadlocking.
func (b *bookkeeping) lockSlotOffsets(ctx context.Context, tx txn, topic string, keys []partSlot) (map[partSlot]int64, error) {
	slices.SortFunc(keys, func(x, y partSlot) int {
		if x.partition != y.partition {
			return int(x.partition - y.partition)
		}
		return x.slot - y.slot
	})
	part := b.d.q.ident("partition")
	vals := make([]string, len(keys))
	args := make([]any, 0, 4*len(keys))
	for i, k := range keys {
		vals[i] = "(?, ?, ?, ?, -1)"
		args = append(args, b.pipeline, topic, k.partition, k.slot)
	}
	cols := "pipeline, topic, " + part + ", slot, next_offset"
	pk := "pipeline, topic, " + part + ", slot"
	if err := tx.exec(ctx, b.d.insertIgnore(b.slotOffsets, cols, strings.Join(vals, ", "), pk), args...); err != nil {
		return nil, fmt.Errorf("creating slot offset rows: %w", err)
	}
	// Only the batch's own slot rows: locking every slot of the partition
	// would make the workers of one partition, which write disjoint
	// slots, wait for each other's transactions (exactly-once with
	// parallelism then ran no faster than one worker).
	var parts []int32
	var match []string
	qargs := []any{b.pipeline, topic}
	for i := 0; i < len(keys); {
		p := keys[i].partition
		parts = append(parts, p)
		qargs = append(qargs, p)
		var in []string
		for ; i < len(keys) && keys[i].partition == p; i++ {
			in = append(in, "?")
			qargs = append(qargs, keys[i].slot)
		}
		match = append(match, fmt.Sprintf("(%s = ? AND slot IN (%s))", part, strings.Join(in, ", ")))
	}
	rows, err := tx.query(ctx, fmt.Sprintf(`SELECT %s, slot, next_offset FROM %s WHERE pipeline = ? AND topic = ? AND (%s) ORDER BY %s, slot%s`,
		part, b.slotOffsets, strings.Join(match, " OR "), part, b.d.forUpdate), qargs...)
	if err != nil {
		return nil, fmt.Errorf("locking slot offset rows: %w", err)
	}
	out := make(map[partSlot]int64, len(keys))
	for rows.Next() {
		var k partSlot
		var next int64
		if err := rows.Scan(&k.partition, &k.slot, &next); err != nil {
			rows.Close()
			return nil, err
		}
		out[k] = next
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	floors, err := b.partitionRows(ctx, tx.query, topic, parts)
	if err != nil {
		return nil, fmt.Errorf("reading partition offsets: %w", err)
	}
	for k, next := range out {
		if f, ok := floors[k.partition]; ok && f > next {
			out[k] = f
		}
	}
	return out, nil
}

// partitionRows reads the sluice_offsets rows of parts (nil: all) that
// hold an offset.
func (b *bookkeeping) partitionRows(ctx context.Context, q func(context.Context, string, ...any) (rowsIter, error), topic string, parts []int32) (map[int32]int64, error) {
	part := b.d.q.ident("partition")
	stmt := fmt.Sprintf(`SELECT %s, next_offset FROM %s WHERE pipeline = ? AND topic = ? AND next_offset >= 0`, part, b.offsets)
	args := []any{b.pipeline, topic}
	if parts != nil {
		in := strings.Repeat("?, ", len(parts))
		stmt += fmt.Sprintf(" AND %s IN (%s)", part, in[:len(in)-2])
		for _, p := range parts {
			args = append(args, p)
		}
	}
	rows, err := q(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var p int32
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// saveSlotOffsets stores the next offset of each slot written.
func (b *bookkeeping) saveSlotOffsets(ctx context.Context, tx txn, topic string, next map[partSlot]int64) error {
	if len(next) == 0 {
		return nil
	}
	vals := make([]string, 0, len(next))
	args := make([]any, 0, 5*len(next))
	for k, n := range next {
		vals = append(vals, "(?, ?, ?, ?, ?)")
		args = append(args, b.pipeline, topic, k.partition, k.slot, n)
	}
	part := b.d.q.ident("partition")
	cols := "pipeline, topic, " + part + ", slot, next_offset"
	if err := tx.exec(ctx, b.d.upsert(b.slotOffsets, cols, strings.Join(vals, ", "), "pipeline, topic, "+part+", slot", "next_offset"), args...); err != nil {
		return fmt.Errorf("saving slot offsets: %w", err)
	}
	return nil
}

// slotPartitions lists the partitions of topic with offsets stored per
// slot.
func (b *bookkeeping) slotPartitions(ctx context.Context, db database, topic string) (map[int32]bool, error) {
	rows, err := db.query(ctx, fmt.Sprintf(`SELECT DISTINCT %s FROM %s WHERE pipeline = ? AND topic = ? AND next_offset >= 0`,
		b.d.q.ident("partition"), b.slotOffsets), b.pipeline, topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int32]bool{}
	for rows.Next() {
		var p int32
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out[p] = true
	}
	return out, rows.Err()
}

// forgetSlots deletes the slot rows of parts: `sluice offsets reset` sets
// where a partition resumes, and rows above it would skip records.
func (b *bookkeeping) forgetSlots(ctx context.Context, tx txn, topic string, parts []int32) error {
	in := strings.Repeat("?, ", len(parts))
	args := []any{b.pipeline, topic}
	for _, p := range parts {
		args = append(args, p)
	}
	if err := tx.exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE pipeline = ? AND topic = ? AND %s IN (%s)`,
		b.slotOffsets, b.d.q.ident("partition"), in[:len(in)-2]), args...); err != nil {
		return fmt.Errorf("forgetting slot offsets: %w", err)
	}
	return nil
}

// notYetWrittenBySlot is notYetWritten with offsets per slot: it locks the
// slot rows of the records in rows and keeps those at or past their
// slot's stored next offset.
func (s *Sink) notYetWrittenBySlot(ctx context.Context, tx txn, rows []row, todo []int) ([]int, error) {
	keys := map[string]map[partSlot]bool{}
	for _, r := range rows {
		if keys[r.rec.Topic] == nil {
			keys[r.rec.Topic] = map[partSlot]bool{}
		}
		keys[r.rec.Topic][partSlot{r.rec.Partition, r.rec.Slot}] = true
	}
	stored := map[string]map[partSlot]int64{}
	for topic, ks := range keys {
		offs, err := s.bk.lockSlotOffsets(ctx, tx, topic, mapKeys(ks))
		if err != nil {
			return nil, err
		}
		stored[topic] = offs
	}
	for i, r := range rows {
		if next, ok := stored[r.rec.Topic][partSlot{r.rec.Partition, r.rec.Slot}]; ok && r.rec.Offset < next {
			continue
		}
		todo = append(todo, i)
	}
	return todo, nil
}

// saveWritten stores, in tx, the next offsets after the rows inserted:
// per partition, or per slot with parallelism.
func (s *Sink) saveWritten(ctx context.Context, tx txn, ins []row) error {
	if !s.slots {
		next := map[string]map[int32]int64{}
		for _, r := range ins {
			if next[r.rec.Topic] == nil {
				next[r.rec.Topic] = map[int32]int64{}
			}
			next[r.rec.Topic][r.rec.Partition] = max(next[r.rec.Topic][r.rec.Partition], r.rec.Offset+1)
		}
		for topic, offs := range next {
			if err := s.bk.saveOffsets(ctx, tx, topic, offs); err != nil {
				return err
			}
		}
		return nil
	}
	next := map[string]map[partSlot]int64{}
	for _, r := range ins {
		if next[r.rec.Topic] == nil {
			next[r.rec.Topic] = map[partSlot]int64{}
		}
		k := partSlot{r.rec.Partition, r.rec.Slot}
		next[r.rec.Topic][k] = max(next[r.rec.Topic][k], r.rec.Offset+1)
	}
	for topic, offs := range next {
		if err := s.bk.saveSlotOffsets(ctx, tx, topic, offs); err != nil {
			return err
		}
	}
	return nil
}

// loadSlotAware is LoadOffsets knowing about slot rows: stored are the
// partition rows of the partitions asked for. With slots, a partition
// that has slot rows resumes from the group's committed offset (nothing
// returned for it); one without resumes from its sluice_offsets row.
// Without slots, a partition with slot rows stops the pipeline: its
// partition row is stale, and resuming from it would duplicate records.
func (s *Sink) loadSlotAware(ctx context.Context, topic string, partitions []int32, stored map[int32]int64) (map[int32]int64, error) {
	var bySlot map[int32]bool
	err := retryTransient(ctx, s.db, s.log, "loading slot offsets", func() error {
		var err error
		bySlot, err = s.bk.slotPartitions(ctx, s.db, topic)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading slot offsets of %s from %s: %w", topic, s.bk.slotOffsets, err)
	}
	for _, p := range partitions {
		if !bySlot[p] {
			continue
		}
		if !s.slots {
			return nil, connector.Permanent(fmt.Errorf("partition %s/%d: this pipeline ran with parallelism and exactly_once, which stores offsets per slot in %s; keep parallelism (workers: 1 is fine) or reset the offsets with `sluice offsets reset`", topic, p, s.bk.slotOffsets))
		}
		delete(stored, p)
	}
	return stored, nil
}

func mapKeys[K comparable](m map[K]bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
