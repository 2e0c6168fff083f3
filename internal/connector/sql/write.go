package sql

import (
	"context"
	"fmt"
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
	if len(batch) == 0 {
		return nil
	}
	m, err := s.ready(ctx, batch)
	if err != nil {
		return err
	}
	p, rows, bad := m.rows(batch)
	done := &partialWrite{}
	if pw := s.takePartial(batch[0]); pw != nil {
		bad = append(bad, pw.bad...)
		rows = dropBefore(rows, pw.upTo)
		done = pw
	}
	for len(rows) > 0 {
		res, err := s.commitRows(ctx, p, rows)
		if err != nil {
			if done.upTo > 0 {
				s.savePartial(batch[0], done)
			}
			return err
		}
		done.bad = append(done.bad, res.bad...)
		bad = append(bad, res.bad...)
		if res.consumed > 0 {
			done.upTo = rows[res.consumed-1].idx + 1
			rows = rows[res.consumed:]
		}
		if res.full {
			if err := s.merge.waitForMerge(ctx); err != nil {
				s.savePartial(batch[0], done)
				return err
			}
		}
	}
	if len(bad) > 0 {
		return &connector.BatchError{Failed: bad}
	}
	return nil
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
		if batchID, err = s.db.dialect().gate(ctx, tx, s.bk, exact); err != nil {
			return res, wrap(s.db, "reading the open staging batch", err)
		}
		if exact {
			if inBatch, err = s.bk.batchRecords(ctx, tx, batchID); err != nil {
				return res, wrap(s.db, "counting the open staging batch", err)
			}
		}
	}
	todo := make([]int, 0, len(rows)) // indexes of rows to write
	if s.exactlyOnce {
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
	next := map[string]map[int32]int64{}
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
		for _, r := range ins {
			if next[r.rec.Topic] == nil {
				next[r.rec.Topic] = map[int32]int64{}
			}
			if o := r.rec.Offset + 1; o > next[r.rec.Topic][r.rec.Partition] {
				next[r.rec.Topic][r.rec.Partition] = o
			}
		}
		pos += take
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
		for topic, offs := range next {
			if err := s.bk.saveOffsets(ctx, tx, topic, offs); err != nil {
				return res, wrap(s.db, "storing offsets", err)
			}
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

func (s *Sink) takePartial(key *connector.Record) *partialWrite {
	s.partialMu.Lock()
	defer s.partialMu.Unlock()
	pw := s.partial[key]
	delete(s.partial, key)
	return pw
}

func (s *Sink) savePartial(key *connector.Record, pw *partialWrite) {
	s.partialMu.Lock()
	defer s.partialMu.Unlock()
	s.partial[key] = &partialWrite{upTo: pw.upTo, bad: append([]*connector.RecordError(nil), pw.bad...)}
}

// dropBefore drops the rows of records before batch[upTo].
func dropBefore(rows []row, upTo int) []row {
	for i, r := range rows {
		if r.idx >= upTo {
			return rows[i:]
		}
	}
	return nil
}

// retryTransient runs f until it succeeds, fails for good, or ctx ends.
func retryTransient(ctx context.Context, db database, log interface {
	Warn(msg string, args ...any)
}, what string, f func() error) error {
	wait := 200 * time.Millisecond
	for {
		err := f()
		if err == nil || db.classify(err) == errPermanent || ctx.Err() != nil {
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
