package sql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Write implements connector.Sink. Each transaction holds the pipeline's
// write gate (shared; exclusive with exact), which is how merges keep
// inserts out in pause mode and how they know every row of a batch they
// close is committed (see merge.go).
//
// With merge.exact in pause mode a batch that would cross every_records is
// split: the rows that fit are committed, a merge runs, then the rest go
// into the next batch. Write waits for that merge.
func (s *Sink) Write(ctx context.Context, batch []*connector.Record) error {
	return s.WritePrepared(ctx, batch, nil)
}

// prepared is a batch mapped to rows by the mapper of the time.
type prepared struct {
	m         *mapper
	p         plan
	rows      []row
	bad       []*connector.RecordError
	newFields map[string]sample // add_columns: fields without a column
}

func prepare(ctx context.Context, m *mapper, batch []*connector.Record) (*prepared, error) {
	pr := &prepared{m: m}
	var err error
	pr.p, pr.rows, pr.bad, pr.newFields, err = m.rows(ctx, batch)
	return pr, err
}

// Prepare implements connector.Preparer: it maps the batch to rows (the
// sink's main CPU cost: decoding values, converting them) while the engine
// writes the previous batch. It returns nil until the table is known
// (create_table creates it on the first Write), or when decoding needs
// the schema registry and it fails: WritePrepared then tries again.
func (s *Sink) Prepare(batch []*connector.Record) any {
	s.mu.Lock()
	m := s.mapper
	s.mu.Unlock()
	if m == nil || len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := prepare(ctx, m, batch)
	if err != nil {
		return nil
	}
	return pr
}

// WritePrepared implements connector.Preparer.
func (s *Sink) WritePrepared(ctx context.Context, batch []*connector.Record, prep any) error {
	if len(batch) == 0 {
		return nil
	}
	m, err := s.ready(ctx, batch)
	if err != nil {
		return err
	}
	pr, _ := prep.(*prepared)
	if pr == nil || pr.m != m {
		if pr, err = prepare(ctx, m, batch); err != nil {
			return err
		}
	}
	if len(pr.newFields) > 0 {
		// The records bring fields the table lacks (add_columns): add
		// them, then map the batch again with the wider table.
		if _, pr, err = s.evolve(ctx, pr, batch); err != nil {
			return err
		}
	}
	// A retry reuses pr: nothing below may change its slices in place.
	p, rows, bad := pr.p, pr.rows, slices.Clip(pr.bad)
	if s.exactlyOnce && len(bad) > 0 {
		// Stored offsets must not pass a record on_error has not handled:
		// write nothing now; the engine routes the bad records, then
		// writes the rest at once.
		return &connector.BatchError{Failed: bad, NotWritten: connector.Without(batch, bad)}
	}
	if groups := s.split(rows); len(groups) > 1 {
		return s.writeGroups(ctx, p, groups, bad)
	}
	for len(rows) > 0 {
		res, err := s.commitRows(ctx, p, rows)
		bad = append(bad, res.bad...)
		if err != nil {
			return unwritten(bad, rows, err)
		}
		rows = rows[res.consumed:]
		if res.full {
			if err := s.merge.waitForMerge(ctx); err != nil {
				return unwritten(bad, rows, err)
			}
		}
	}
	return connector.Rejected(bad)
}

// errRejectedInTxn: in exactly-once mode the database rejected rows of a
// transaction, which was rolled back so that its stored offsets do not
// pass them; the rest is written again once they are routed.
var errRejectedInTxn = errors.New("rows rejected; transaction rolled back so that no stored offset passes them")

// unwritten reports a write that stopped on cause with rows not committed:
// bad records are rejected, the other records of rows are not written.
func unwritten(bad []*connector.RecordError, rows []row, cause error) error {
	if errors.Is(cause, errRejectedInTxn) {
		cause = nil
	}
	recs := make([]*connector.Record, len(rows))
	for i, r := range rows {
		recs[i] = r.rec
	}
	return &connector.BatchError{Failed: bad, NotWritten: connector.Without(recs, bad), Cause: cause}
}

// minSplitRows is the least rows a transaction of a split batch gets:
// smaller batches are not worth a second transaction.
const minSplitRows = 1000

// split divides rows into at most s.writers groups of whole partitions of
// about equal size, keeping the batch's order within each group. It
// returns nil when the batch is written by one transaction: one writer,
// exact merges (which count rows in order), one partition, or few rows.
func (s *Sink) split(rows []row) [][]row {
	if s.writers < 2 || len(rows) < 2*minSplitRows || (s.cfg.Merge != nil && s.cfg.Merge.Exact) {
		return nil
	}
	type part struct {
		tp    topicPartition
		count int
	}
	var parts []part
	index := map[topicPartition]int{}
	for _, r := range rows {
		tp := topicPartition{r.rec.Topic, r.rec.Partition}
		i, ok := index[tp]
		if !ok {
			i = len(parts)
			index[tp] = i
			parts = append(parts, part{tp: tp})
		}
		parts[i].count++
	}
	n := min(s.writers, len(parts), len(rows)/minSplitRows)
	if n < 2 {
		return nil
	}
	// Largest partitions first, each to the group with the fewest rows.
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return parts[b].count - parts[a].count })
	sizes := make([]int, n)
	group := make([]int, len(parts)) // part -> group
	for _, i := range order {
		g := slices.Index(sizes, slices.Min(sizes))
		group[i] = g
		sizes[g] += parts[i].count
	}
	groups := make([][]row, n)
	for g := range groups {
		groups[g] = make([]row, 0, sizes[g])
	}
	for _, r := range rows {
		g := group[index[topicPartition{r.rec.Topic, r.rec.Partition}]]
		groups[g] = append(groups[g], r)
	}
	return groups
}

type topicPartition struct {
	topic     string
	partition int32
}

// writeGroups commits each group in its own transaction, at the same time
// on separate connections. Partitions never span groups, so exactly-once
// offsets stay in the transaction of their rows. When some groups commit
// and another fails, the records of the failed groups are reported not
// written, and only they are written again.
func (s *Sink) writeGroups(ctx context.Context, p plan, groups [][]row, bad []*connector.RecordError) error {
	results := make([]txResult, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { results[i], errs[i] = s.commitRows(ctx, p, g) })
	}
	wg.Wait()
	var cause error
	var failed []row
	for i, g := range groups {
		bad = append(bad, results[i].bad...)
		if errs[i] != nil {
			if !errors.Is(errs[i], errRejectedInTxn) {
				cause = cmp.Or(cause, errs[i])
			}
			failed = append(failed, g...)
		}
	}
	if len(failed) > 0 {
		if cause == nil {
			cause = errRejectedInTxn
		}
		return unwritten(bad, failed, cause)
	}
	return connector.Rejected(bad)
}

// txResult is what one transaction did.
type txResult struct {
	consumed int // rows handled: written, rejected, or already stored
	bad      []*connector.RecordError
	full     bool // exact pause mode: the open batch is full, merge first
}

func (s *Sink) commitRows(ctx context.Context, p plan, rows []row) (txResult, error) {
	var res txResult
	arrived := time.Now().UnixMicro()
	tx, err := s.db.begin(ctx)
	if err != nil {
		return res, wrap(s.db, "starting a transaction", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.rollback(context.WithoutCancel(ctx))
		}
	}()
	merge := s.cfg.Merge
	exact := merge != nil && merge.Exact
	var batchID, inBatch int64
	if merge != nil {
		if batchID, err = s.db.dialect().gate(ctx, patiently(tx), s.bk, exact); err != nil {
			return res, wrap(s.db, "reading the open staging batch", err)
		}
		if exact {
			if inBatch, err = s.bk.batchRecords(ctx, tx, batchID); err != nil {
				return res, wrap(s.db, "counting the open staging batch", err)
			}
		}
	}
	todo := make([]int, 0, len(rows)) // indexes of rows to write
	if s.slots {
		if todo, err = s.notYetWrittenBySlot(ctx, tx, rows, todo); err != nil {
			return res, wrap(s.db, "reading stored offsets", err)
		}
	} else if s.exactlyOnce {
		if todo, err = s.notYetWritten(ctx, tx, rows, todo); err != nil {
			return res, wrap(s.db, "reading stored offsets", err)
		}
	} else {
		for i := range rows {
			todo = append(todo, i)
		}
	}
	counts := map[int64]int64{} // batch -> rows inserted
	var inserted int64
	var written []row // inserted, for the offsets stored with them
	pos := 0
	for pos < len(todo) {
		take := len(todo) - pos
		if exact {
			room := int64(merge.EveryRecords) - inBatch
			if room <= 0 {
				if merge.Mode == config.MergePause {
					res.full = true
					break
				}
				if err := s.bk.advance(ctx, tx, batchID); err != nil {
					return res, wrap(s.db, "closing a full staging batch", err)
				}
				batchID, inBatch, room = batchID+1, 0, int64(merge.EveryRecords)
			}
			take = int(min(int64(take), room))
		}
		chunk := make([]row, take)
		for i := range chunk {
			chunk[i] = rows[todo[pos+i]]
			if p.batchPos >= 0 {
				chunk[i].vals[p.batchPos] = batchID
			}
		}
		ins, bad, err := s.insert(ctx, tx, p, chunk)
		if err != nil {
			return res, err
		}
		res.bad = append(res.bad, bad...)
		counts[batchID] += int64(len(ins))
		inBatch += int64(len(ins))
		inserted += int64(len(ins))
		if s.exactlyOnce {
			written = append(written, ins...)
		}
		pos += take
	}
	if s.exactlyOnce && len(res.bad) > 0 {
		return res, errRejectedInTxn // rolled back below
	}
	res.consumed = len(rows)
	if pos < len(todo) {
		res.consumed = todo[pos]
	}
	if res.consumed == 0 {
		return res, nil // the open batch is full: nothing to commit
	}
	if merge != nil {
		now := time.Now().UnixMicro()
		for b, n := range counts {
			if err := s.bk.addRecords(ctx, tx, b, n, arrived, now); err != nil {
				return res, wrap(s.db, "counting staging rows", err)
			}
		}
	}
	if s.exactlyOnce {
		if err := s.saveWritten(ctx, tx, written); err != nil {
			return res, wrap(s.db, "storing offsets", err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return res, wrap(s.db, fmt.Sprintf("committing %d rows to %s", len(todo), s.table), err)
	}
	committed = true
	if merge != nil {
		s.merge.wrote(inserted, exact && (res.full || inBatch >= int64(merge.EveryRecords)))
	}
	return res, nil
}

// notYetWritten locks the offset rows of the partitions in rows and keeps
// the rows at or past the stored next offset (exactly-once).
func (s *Sink) notYetWritten(ctx context.Context, tx txn, rows []row, todo []int) ([]int, error) {
	parts := map[string][]int32{}
	for _, r := range rows {
		ps := parts[r.rec.Topic]
		if len(ps) == 0 || ps[len(ps)-1] != r.rec.Partition {
			found := false
			for _, p := range ps {
				found = found || p == r.rec.Partition
			}
			if !found {
				parts[r.rec.Topic] = append(ps, r.rec.Partition)
			}
		}
	}
	stored := map[string]map[int32]int64{}
	for topic, ps := range parts {
		offs, err := s.bk.lockOffsets(ctx, tx, topic, ps)
		if err != nil {
			return nil, err
		}
		stored[topic] = offs
	}
	for i, r := range rows {
		if next, ok := stored[r.rec.Topic][r.rec.Partition]; ok && r.rec.Offset < next {
			continue
		}
		todo = append(todo, i)
	}
	return todo, nil
}

// insert writes chunk inside a savepoint. When the database rejects the
// data (a constraint, a value it refuses), it splits the chunk in halves
// until it finds the rows at fault, which it returns as bad.
func (s *Sink) insert(ctx context.Context, tx txn, p plan, chunk []row) ([]row, []*connector.RecordError, error) {
	vals := make([][]any, len(chunk))
	for i, r := range chunk {
		vals[i] = r.vals
	}
	if err := tx.exec(ctx, "SAVEPOINT sluice_rows"); err != nil {
		return nil, nil, wrap(s.db, "writing rows", err)
	}
	err := tx.insert(ctx, s.table, p.names, vals)
	if err == nil {
		if err := tx.exec(ctx, "RELEASE SAVEPOINT sluice_rows"); err != nil {
			return nil, nil, wrap(s.db, "writing rows", err)
		}
		return chunk, nil, nil
	}
	if s.db.classify(err) != errData || ctx.Err() != nil {
		return nil, nil, wrap(s.db, fmt.Sprintf("writing %d rows to %s", len(chunk), s.table), err)
	}
	if rerr := tx.exec(ctx, "ROLLBACK TO SAVEPOINT sluice_rows"); rerr != nil {
		return nil, nil, wrap(s.db, "writing rows", rerr)
	}
	if len(chunk) == 1 {
		rec := chunk[0].rec
		return nil, []*connector.RecordError{{Record: rec, Reason: "rejected",
			Err: fmt.Errorf("table %s, offset %d: the database rejected the row: %w", s.table, rec.Offset, err)}}, nil
	}
	mid := len(chunk) / 2
	a, badA, err := s.insert(ctx, tx, p, chunk[:mid])
	if err != nil {
		return nil, nil, err
	}
	b, badB, err := s.insert(ctx, tx, p, chunk[mid:])
	if err != nil {
		return nil, nil, err
	}
	return append(a, b...), append(badA, badB...), nil
}

// retryTransient runs f until it succeeds, fails for good (an error the
// database classifies permanent, or one marked connector.Permanent), or ctx
// ends.
func retryTransient(ctx context.Context, db database, log interface {
	Warn(msg string, args ...any)
}, what string, f func() error) error {
	wait := 200 * time.Millisecond
	for {
		err := f()
		if err == nil || db.classify(err) == errPermanent || connector.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		log.Warn(what+"; retrying", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, 5*time.Second)
	}
}
