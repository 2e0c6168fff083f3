package sql

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// The merge orchestrator decides when the staging table is merged and
// runs the merge.
//
// Staging rows carry the batch id that was open when they were written
// (_sluice_batch); sluice_merge_state holds the open batch and
// sluice_batches counts rows per batch, for every process of the
// pipeline. Every write transaction takes the pipeline's write gate
// (shared) and reads the open batch under it; a merge takes the gate
// exclusively, which waits for the writes in flight and holds new ones off.
//
//   - pause mode: consumers pause and drain (connector.Controller), then one
//     transaction takes the gate, runs the merge with {{.HighWaterMark}} =
//     the open batch, records it merged and opens the next batch. Holding
//     the gate for the whole merge is what keeps other processes from
//     inserting meanwhile.
//   - continuous mode: a short transaction under the gate closes the open
//     batch (opens the next); once it commits no row can join the closed
//     batch, so the merge transaction that follows takes exactly the rows
//     at or below the high-water mark while ingestion goes on.
//   - exact: the count is enforced in the write transaction (holding the
//     gate exclusively, so concurrent writers count one after the other):
//     a write fills the open batch up to every_records and no further. In
//     pause mode the rest waits for the merge; in continuous mode the
//     writer closes the full batch and goes on in the next one, and the
//     merges take the closed batches one at a time.
//
// One process merges at a time: the merge lock (a PostgreSQL session
// advisory lock, MySQL GET_LOCK, a mutex for SQLite) is held for the
// whole merge. The merge statements run in the same transaction that
// marks the batches merged, so a failure or a crash leaves the rows and
// the batch for the next attempt, never half of it.
type orchestrator struct {
	pipeline string // the metrics' label
	db       database
	bk       *bookkeeping
	cfg      config.Merge
	stmts    []*template.Template
	table    string // quoted staging table, for {{.Table}}
	log      *slog.Logger
	history  *mergeHistory

	pokes  chan struct{}   // a write filled a batch; capacity 1
	manual chan chan error // MergeNow
	local  atomic.Int64    // rows this process wrote since its last merge
	sess   session         // the merge connection, kept between merges; run's goroutine only

	mu     sync.Mutex
	ctrl   connector.Controller
	merged chan struct{} // closed (and replaced) after every merge
	failed error         // a merge that cannot succeed by retrying (connector.Permanent); set once
}

func newOrchestrator(s *Sink, cfg config.Merge) (*orchestrator, error) {
	o := &orchestrator{pipeline: s.pipeline, db: s.db, bk: s.bk, cfg: cfg, table: s.db.dialect().q.table(s.table),
		log: s.log, history: newMergeHistory(cfg.History),
		pokes: make(chan struct{}, 1), manual: make(chan chan error), merged: make(chan struct{})}
	for i, st := range cfg.MergeStatements() {
		t, err := template.New(fmt.Sprintf("merge statement %d", i+1)).Option("missingkey=error").Parse(st)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		o.stmts = append(o.stmts, t)
	}
	return o, nil
}

func (o *orchestrator) setController(c connector.Controller) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ctrl = c
}

func (o *orchestrator) controller() connector.Controller {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ctrl
}

// wrote is told, after each commit, how many rows it inserted and whether
// an exact batch is full. Rows of other processes are seen by the periodic
// check.
func (o *orchestrator) wrote(rows int64, full bool) {
	n := o.local.Add(rows)
	if full || (o.cfg.EveryRecords > 0 && n >= int64(o.cfg.EveryRecords)) {
		select {
		case o.pokes <- struct{}{}:
		default:
		}
	}
}

// waitForMerge asks for a merge and waits until one finished here, or
// briefly (another process may be the one merging).
func (o *orchestrator) waitForMerge(ctx context.Context) error {
	o.mu.Lock()
	ch := o.merged
	o.mu.Unlock()
	if err := o.failure(); err != nil {
		return err
	}
	o.wrote(0, true)
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (o *orchestrator) signalMerged() {
	o.local.Store(0)
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.merged)
	o.merged = make(chan struct{})
}

func (o *orchestrator) mergeNow(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case o.manual <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// period is how often the triggers are checked against the database
// (which also sees other processes' writes).
func (o *orchestrator) period() time.Duration {
	p := time.Second
	for _, d := range []time.Duration{o.cfg.Idle, o.cfg.MaxInterval} {
		if d > 0 && d/4 < p {
			p = d / 4
		}
	}
	return max(p, 10*time.Millisecond)
}

// run checks the triggers on every poke and period until ctx ends.
func (o *orchestrator) run(ctx context.Context) error {
	t := time.NewTimer(0) // at once: batches a previous run left unmerged
	defer t.Stop()
	defer func() {
		if o.sess != nil {
			o.sess.close()
		}
	}()
	lastWarn := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case reply := <-o.manual:
			reply <- o.mergeRetrying(ctx, connector.TriggerManual)
			continue
		case <-o.pokes:
		case <-t.C:
			t.Reset(o.period())
		}
		for ctx.Err() == nil {
			st, err := o.bk.status(ctx, o.db.query)
			if err != nil {
				if ctx.Err() == nil && time.Since(lastWarn) > 30*time.Second {
					o.log.Warn("checking merge triggers", "err", err)
					lastWarn = time.Now()
				}
				break
			}
			trig := o.due(st, time.Now())
			if trig == "" {
				break
			}
			if o.mergeRetrying(ctx, trig) != nil {
				break // shutting down, or failed for good
			}
		}
	}
}

// due says which trigger fires for st, or "".
func (o *orchestrator) due(st mergeStatus, now time.Time) connector.MergeTrigger {
	n := int64(o.cfg.EveryRecords)
	if closed := st.closed(); len(closed) > 0 {
		for _, b := range closed {
			if b.records > 0 {
				if o.cfg.Exact && n > 0 && b.records >= n {
					return connector.TriggerRecords
				}
				return connector.TriggerRecovery
			}
		}
	}
	var total, first, last int64
	for _, b := range st.unmerged {
		total += b.records
		if b.firstAt > 0 && (first == 0 || b.firstAt < first) {
			first = b.firstAt
		}
		last = max(last, b.lastAt)
	}
	if total == 0 {
		return ""
	}
	us := now.UnixMicro()
	switch {
	case n > 0 && st.openBatch().records >= n:
		return connector.TriggerRecords
	case o.cfg.Idle > 0 && us-last >= o.cfg.Idle.Microseconds():
		return connector.TriggerIdle
	case o.cfg.MaxInterval > 0 && first > 0 && us-first >= o.cfg.MaxInterval.Microseconds():
		return connector.TriggerMaxInterval
	}
	return ""
}

// render fills the merge statements for one high-water mark.
func (o *orchestrator) render(hwm int64) ([]string, error) {
	data := struct {
		HighWaterMark int64
		Table         string
		Pipeline      string
	}{hwm, o.table, o.bk.pipeline}
	out := make([]string, len(o.stmts))
	for i, t := range o.stmts {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", t.Name(), err)
		}
		out[i] = b.String()
	}
	return out, nil
}
