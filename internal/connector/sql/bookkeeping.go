package sql

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// bookkeeping is the sink's own tables, next to the staging table:
//
//	sluice_offsets(pipeline, topic, partition, next_offset)
//	    exactly-once: the next Kafka offset to read, written in the same
//	    transaction as the staging rows. -1 = row created, nothing written.
//	sluice_slot_offsets(pipeline, topic, partition, slot, next_offset)
//	    exactly-once with parallelism: the same per slot (slots.go).
//	sluice_merge_state(pipeline, staging_table, batch)
//	    the open staging batch: rows written now get _sluice_batch = batch.
//	    Its row is also the write gate on MySQL (see gate).
//	sluice_batches(pipeline, batch, records, first_at, last_at, merged_at)
//	    rows written per batch, when the first and last arrived and when the
//	    batch was merged (Unix microseconds), shared by every process of
//	    the pipeline so the every_records count and the idle and
//	    max_interval clocks are global.
type bookkeeping struct {
	d           *dialect
	pipeline    string
	offsets     string // quoted table names
	slotOffsets string
	state       string
	batches     string
}

func newBookkeeping(d *dialect, schema, pipeline string) *bookkeeping {
	name := func(n string) string { return d.q.table(tableName{schema: schema, name: n}) }
	return &bookkeeping{d: d, pipeline: pipeline,
		offsets: name("sluice_offsets"), slotOffsets: name("sluice_slot_offsets"), state: name("sluice_merge_state"), batches: name("sluice_batches")}
}

// lockName names one of the pipeline's locks: a MySQL named lock (at most
// 64 characters) or, through lockKeyOf, a PostgreSQL advisory lock key.
func (b *bookkeeping) lockName(purpose string) string {
	name := "sluice." + purpose + ":" + b.pipeline
	if len(name) > 64 {
		name = fmt.Sprintf("sluice.%s:%x", purpose, lockKeyOf(name))
	}
	return name
}

// lockKeyOf is a 63-bit advisory lock key for name.
func lockKeyOf(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() & (1<<63 - 1))
}

func (b *bookkeeping) ddl(withMerge bool) []string {
	q, key := b.d.q.ident, b.d.keyText
	out := []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (pipeline %s NOT NULL, topic %s NOT NULL, %s integer NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (pipeline, topic, %s))`,
		b.offsets, key, key, q("partition"), q("partition")), b.slotsDDL()}
	if withMerge {
		out = append(out,
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (pipeline %s NOT NULL PRIMARY KEY, staging_table %s NOT NULL, batch bigint NOT NULL)`, b.state, key, key),
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (pipeline %s NOT NULL, batch bigint NOT NULL, records bigint NOT NULL DEFAULT 0, first_at bigint NOT NULL DEFAULT 0, last_at bigint NOT NULL DEFAULT 0, merged_at bigint, PRIMARY KEY (pipeline, batch))`, b.batches, key))
	}
	return out
}

// setup creates the tables and the pipeline's state row (batch 1).
func (b *bookkeeping) setup(ctx context.Context, db database, staging string, withMerge bool) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx))
	release, err := lockDDL(ctx, tx, b.d)
	if err != nil {
		return err
	}
	defer release()
	for _, s := range b.ddl(withMerge) {
		if err := tx.exec(ctx, s); err != nil {
			return fmt.Errorf("creating the sink's bookkeeping tables: %w", err)
		}
	}
	release()
	if withMerge {
		if err := tx.exec(ctx, b.d.insertIgnore(b.state, "pipeline, staging_table, batch", "(?, ?, 1)", "pipeline"), b.pipeline, staging); err != nil {
			return err
		}
		if err := tx.exec(ctx, b.d.insertIgnore(b.batches, "pipeline, batch", "(?, 1)", "pipeline, batch"), b.pipeline); err != nil {
			return err
		}
	}
	return tx.commit(ctx)
}

// lockOffsets locks the offset rows of the partitions written (creating
// them first, so two writers of one partition always meet on a row lock)
// and returns their next offsets. Partitions are locked in order, which
// keeps two such transactions from deadlocking.
func (b *bookkeeping) lockOffsets(ctx context.Context, tx txn, topic string, parts []int32) (map[int32]int64, error) {
	slices.Sort(parts)
	vals := make([]string, len(parts))
	args := make([]any, 0, 3*len(parts))
	in := make([]string, len(parts))
	for i, p := range parts {
		vals[i] = "(?, ?, ?, -1)"
		in[i] = "?"
		args = append(args, b.pipeline, topic, p)
	}
	cols := "pipeline, topic, " + b.d.q.ident("partition") + ", next_offset"
	keys := "pipeline, topic, " + b.d.q.ident("partition")
	if err := tx.exec(ctx, b.d.insertIgnore(b.offsets, cols, strings.Join(vals, ", "), keys), args...); err != nil {
		return nil, fmt.Errorf("creating offset rows: %w", err)
	}
	qargs := []any{b.pipeline, topic}
	for _, p := range parts {
		qargs = append(qargs, p)
	}
	rows, err := tx.query(ctx, fmt.Sprintf(`SELECT %s, next_offset FROM %s WHERE pipeline = ? AND topic = ? AND %s IN (%s) ORDER BY %s%s`,
		b.d.q.ident("partition"), b.offsets, b.d.q.ident("partition"), strings.Join(in, ", "), b.d.q.ident("partition"), b.d.forUpdate), qargs...)
	if err != nil {
		return nil, fmt.Errorf("locking offset rows: %w", err)
	}
	defer rows.Close()
	out := make(map[int32]int64, len(parts))
	for rows.Next() {
		var p int32
		var next int64
		if err := rows.Scan(&p, &next); err != nil {
			return nil, err
		}
		out[p] = next
	}
	return out, rows.Err()
}

// saveOffsets stores the next offset of each partition written.
func (b *bookkeeping) saveOffsets(ctx context.Context, tx txn, topic string, next map[int32]int64) error {
	if len(next) == 0 {
		return nil
	}
	vals := make([]string, 0, len(next))
	args := make([]any, 0, 4*len(next))
	for p, n := range next {
		vals = append(vals, "(?, ?, ?, ?)")
		args = append(args, b.pipeline, topic, p, n)
	}
	cols := "pipeline, topic, " + b.d.q.ident("partition") + ", next_offset"
	keys := "pipeline, topic, " + b.d.q.ident("partition")
	if err := tx.exec(ctx, b.d.upsert(b.offsets, cols, strings.Join(vals, ", "), keys, "next_offset"), args...); err != nil {
		return fmt.Errorf("saving offsets: %w", err)
	}
	return nil
}

// loadOffsets is connector.OffsetStore's query.
func (b *bookkeeping) loadOffsets(ctx context.Context, db database, topic string) (map[int32]int64, error) {
	return b.partitionRows(ctx, db.query, topic, nil)
}

// batchRecords is how many rows batch holds.
func (b *bookkeeping) batchRecords(ctx context.Context, tx txn, batch int64) (int64, error) {
	n, _, err := queryInt(ctx, tx.query, fmt.Sprintf(`SELECT records FROM %s WHERE pipeline = ? AND batch = ?`, b.batches), b.pipeline, batch)
	return n, err
}

// addRecords counts n rows into batch, written between first and last.
func (b *bookkeeping) addRecords(ctx context.Context, tx txn, batch, n, first, last int64) error {
	return tx.exec(ctx, fmt.Sprintf(`UPDATE %s SET records = records + ?, first_at = CASE WHEN first_at = 0 THEN ? ELSE first_at END, last_at = ? WHERE pipeline = ? AND batch = ?`, b.batches),
		n, first, last, b.pipeline, batch)
}

// advance closes batch from and opens the next one. The caller holds the
// gate exclusively.
func (b *bookkeeping) advance(ctx context.Context, tx txn, from int64) error {
	if err := tx.exec(ctx, fmt.Sprintf(`UPDATE %s SET batch = ? WHERE pipeline = ?`, b.state), from+1, b.pipeline); err != nil {
		return fmt.Errorf("opening staging batch %d: %w", from+1, err)
	}
	if err := tx.exec(ctx, b.d.insertIgnore(b.batches, "pipeline, batch", "(?, ?)", "pipeline, batch"), b.pipeline, from+1); err != nil {
		return fmt.Errorf("opening staging batch %d: %w", from+1, err)
	}
	return nil
}

// markMerged records that every batch up to upTo is merged, and forgets
// old merged batches.
func (b *bookkeeping) markMerged(ctx context.Context, tx txn, upTo, at int64) error {
	if err := tx.exec(ctx, fmt.Sprintf(`UPDATE %s SET merged_at = ? WHERE pipeline = ? AND batch <= ? AND merged_at IS NULL`, b.batches), at, b.pipeline, upTo); err != nil {
		return fmt.Errorf("recording the merge of batch %d: %w", upTo, err)
	}
	return tx.exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE pipeline = ? AND batch < ? AND merged_at IS NOT NULL`, b.batches), b.pipeline, upTo-1000)
}

// batchStatus is one unmerged batch.
type batchStatus struct {
	batch, records, firstAt, lastAt int64
}

// mergeStatus is what the triggers look at.
type mergeStatus struct {
	open     int64
	unmerged []batchStatus // ascending, including the open batch
}

func (s mergeStatus) openBatch() batchStatus {
	for _, b := range s.unmerged {
		if b.batch == s.open {
			return b
		}
	}
	return batchStatus{batch: s.open}
}

// closed are the unmerged batches below the open one (a merge that failed
// or was cut short, or full exact batches in continuous mode).
func (s mergeStatus) closed() []batchStatus {
	var out []batchStatus
	for _, b := range s.unmerged {
		if b.batch < s.open {
			out = append(out, b)
		}
	}
	return out
}

func (b *bookkeeping) status(ctx context.Context, q func(context.Context, string, ...any) (rowsIter, error)) (mergeStatus, error) {
	var st mergeStatus
	open, ok, err := queryInt(ctx, q, fmt.Sprintf(`SELECT batch FROM %s WHERE pipeline = ?`, b.state), b.pipeline)
	if err != nil {
		return st, fmt.Errorf("reading the merge state: %w", err)
	}
	if !ok {
		return st, fmt.Errorf("reading the merge state: no row for pipeline %s in %s", b.pipeline, b.state)
	}
	st.open = open
	rows, err := q(ctx, fmt.Sprintf(`SELECT batch, records, first_at, last_at FROM %s WHERE pipeline = ? AND merged_at IS NULL AND batch <= ? ORDER BY batch`, b.batches), b.pipeline, open)
	if err != nil {
		return st, fmt.Errorf("reading staging batches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var bs batchStatus
		if err := rows.Scan(&bs.batch, &bs.records, &bs.firstAt, &bs.lastAt); err != nil {
			return st, err
		}
		st.unmerged = append(st.unmerged, bs)
	}
	return st, rows.Err()
}
