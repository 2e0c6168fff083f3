package sql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// mergeRetrying runs a merge until it succeeds or ctx ends, with backoff
// between failed attempts. Every attempt goes to the history; a success
// is logged at Info, a failure at Warn.
//
// A merge that fails for good (a syntax error or a missing procedure in
// the merge statements) is not retried: the failure is kept, every later merge and write returns
// it, and the pipeline stops with it; the staged rows stay for a merge
// after the fix.
func (o *orchestrator) mergeRetrying(ctx context.Context, trig connector.MergeTrigger) error {
	if err := o.failure(); err != nil {
		return err
	}
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		info, err := o.mergeOnce(ctx, trig, attempt)
		if err != nil && ctx.Err() != nil {
			// Shutting down: the merge was rolled back and runs after the
			// next start; not a failure to report.
			return ctx.Err()
		}
		if err != nil && info == nil {
			now := time.Now()
			info = &connector.MergeInfo{Trigger: trig, Attempt: attempt, Started: now, Ended: now}
		}
		if err != nil && o.sess != nil {
			// The connection may be broken: open a fresh one next time.
			o.sess.close()
			o.sess = nil
		}
		if info != nil {
			if err != nil {
				info.Error = err.Error()
			}
			o.history.add(*info)
			o.count(info, err)
		}
		if err == nil {
			if info != nil {
				o.log.Info("merged staging batch", "batch", info.Batch, "records", info.Records, "trigger", string(info.Trigger),
					"took", info.Took.Round(time.Millisecond), "end_to_end", info.EndToEnd.Round(time.Millisecond),
					"paused", info.Paused.Round(time.Millisecond), "attempt", attempt)
			}
			return nil
		}
		if fatal := o.fatal(err); fatal != nil {
			o.log.Error("merging staging table failed for good; the pipeline stops", "trigger", string(trig), "attempt", attempt, "err", fatal)
			o.mu.Lock()
			o.failed = fatal
			o.mu.Unlock()
			return fatal
		}
		o.log.Warn("merging staging table; retrying", "trigger", string(trig), "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// failure is the merge failure that stopped merging, or nil.
func (o *orchestrator) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

// fatal returns err as a permanent error saying what to do when retrying
// the merge cannot help, or nil when it may. Only the statements' own
// faults count (a syntax error, a procedure that does not exist) and a
// template that does not render: a table or a privilege the merge lacks
// may come back, and is retried.
func (o *orchestrator) fatal(err error) error {
	if connector.IsPermanent(err) {
		return err
	}
	if !isStatementError(err) {
		return nil
	}
	_, hint := explainError(err)
	return connector.Permanent(fmt.Errorf("merging staging table %s: %w (%s)", o.table, err, hint))
}

// mergeOnce runs one merge. It returns a nil info when there was nothing
// to merge (another process merged first).
func (o *orchestrator) mergeOnce(ctx context.Context, trig connector.MergeTrigger, attempt int) (*connector.MergeInfo, error) {
	if o.sess == nil {
		sess, err := o.db.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("opening a merge session: %w", err)
		}
		o.sess = sess
	}
	sess := o.sess
	lock := o.bk.lockName("merge")
	for {
		ok, err := sess.tryLock(ctx, lock)
		if err != nil {
			return nil, fmt.Errorf("taking the merge lock: %w", err)
		}
		if ok {
			break
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	defer sess.unlock(context.WithoutCancel(ctx), lock)

	st, err := o.bk.status(ctx, o.db.query)
	if err != nil {
		return nil, err
	}
	if trig != connector.TriggerManual && o.due(st, time.Now()) == "" {
		return nil, nil
	}
	pauseStart := time.Now()
	if o.cfg.Mode == config.MergePause {
		resume, err := o.pauseConsumers(ctx)
		if err != nil {
			return nil, fmt.Errorf("pausing consumers for the merge: %w", err)
		}
		defer resume()
	}
	tx, err := sess.begin(ctx)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.rollback(context.WithoutCancel(ctx))
		}
	}()
	open, err := o.db.dialect().gate(ctx, tx, o.bk, true)
	if err != nil {
		return nil, err
	}
	hwm := open
	if o.cfg.Mode == config.MergeContinuous {
		// Close the open batch (unless exact batches are already waiting:
		// they are merged one at a time), then let ingestion go on.
		if closed := closedBelow(st, open); o.cfg.Exact && len(closed) > 0 {
			hwm = closed[0]
		} else if err := o.bk.advance(ctx, tx, open); err != nil {
			return nil, err
		}
		err := tx.commit(ctx)
		done = true
		if err != nil {
			return nil, fmt.Errorf("closing staging batch %d: %w", open, err)
		}
		next, err := sess.begin(ctx)
		if err != nil {
			return nil, err
		}
		tx, done = next, false
	}
	records, first, err := o.unmerged(ctx, tx, hwm)
	if err != nil {
		return nil, err
	}
	if records == 0 && trig != connector.TriggerManual {
		return nil, nil
	}
	stmts, err := o.render(hwm)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	info := &connector.MergeInfo{Batch: hwm, Records: records, Trigger: trig, Attempt: attempt, Started: time.Now()}
	if first > 0 {
		info.FirstArrival = time.UnixMicro(first)
	}
	finish := func(err error) (*connector.MergeInfo, error) {
		info.Ended = time.Now()
		info.Took = info.Ended.Sub(info.Started)
		if !info.FirstArrival.IsZero() {
			info.EndToEnd = info.Ended.Sub(info.FirstArrival)
		}
		if o.cfg.Mode == config.MergePause {
			info.Paused = info.Ended.Sub(pauseStart)
		}
		return info, err
	}
	for i, s := range stmts {
		if err := tx.exec(ctx, s); err != nil {
			return finish(fmt.Errorf("running merge statement %d (%.80q): %w", i+1, s, err))
		}
	}
	if err := o.bk.markMerged(ctx, tx, hwm, time.Now().UnixMicro()); err != nil {
		return finish(err)
	}
	if o.cfg.Mode == config.MergePause {
		if err := o.bk.advance(ctx, tx, open); err != nil {
			return finish(err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return finish(fmt.Errorf("committing the merge: %w", err))
	}
	done = true
	o.signalMerged()
	return finish(nil)
}

// closedBelow lists the unmerged batches with rows below open.
func closedBelow(st mergeStatus, open int64) []int64 {
	var out []int64
	for _, b := range st.unmerged {
		if b.batch < open && b.records > 0 {
			out = append(out, b.batch)
		}
	}
	return out
}

// unmerged sums the rows of the unmerged batches up to hwm.
func (o *orchestrator) unmerged(ctx context.Context, tx txn, hwm int64) (records, first int64, err error) {
	rows, err := tx.query(ctx, fmt.Sprintf(`SELECT COALESCE(SUM(records), 0), COALESCE(MIN(CASE WHEN first_at > 0 THEN first_at END), 0) FROM %s WHERE pipeline = ? AND batch <= ? AND merged_at IS NULL`, o.bk.batches),
		o.bk.pipeline, hwm)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&records, &first); err != nil {
			return 0, 0, err
		}
	}
	return records, first, rows.Err()
}

// pauseConsumers pauses the pipeline for a pause-mode merge. Without exact
// it drains too: every record read is written first. With exact a writer
// may be waiting inside Write for this very merge (its batch is full), so
// the consumers are only stopped from fetching; the gate keeps the writes
// in flight out until the merge is done.
func (o *orchestrator) pauseConsumers(ctx context.Context) (func(), error) {
	ctrl := o.controller()
	if ctrl == nil {
		return func() {}, nil
	}
	if o.cfg.Exact {
		return ctrl.Pause(), nil
	}
	resume, err := ctrl.PauseAndDrain(ctx)
	if err != nil {
		return nil, err
	}
	if resume == nil {
		return nil, errors.New("the pipeline returned no resume function")
	}
	return resume, nil
}

// count updates sluice_merges_total with every attempt the history shows,
// and sluice_merge_seconds with the merges that committed: their whole
// duration, the pause and drain of pause mode included.
func (o *orchestrator) count(info *connector.MergeInfo, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	metrics.Merges.WithLabelValues(o.pipeline, string(info.Trigger), result).Inc()
	if err == nil {
		metrics.MergeSeconds.WithLabelValues(o.pipeline).Observe(max(info.Took, info.Paused).Seconds())
	}
}
