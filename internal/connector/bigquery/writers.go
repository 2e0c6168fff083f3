package bigquery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter"

	"github.com/sluice-dev/sluice/internal/metrics"
)

// writer appends to one table's default stream with one descriptor. It
// owns no connection: with multiplexing, every writer of the process
// shares the client's few AppendRows streams, so a writer per table costs
// memory, not quota.
type writer struct {
	ms  *managedwriter.ManagedStream
	gen *generation // the client it was opened on

	// guarded by the tableVersion's wmu
	users    int // appends in progress
	lastUsed time.Time
	stale    bool // replaced: close when the last user is done
}

// writers opens and closes the writers of one sink.
type writers struct {
	client   *sharedClient
	pipeline string
	// life bounds every writer of the sink: managedwriter ties a writer's
	// lifetime to the context it was opened with, so it cannot be the
	// context of the Write that happened to open it. Close cancels it.
	life context.Context

	mu   sync.Mutex
	open map[*tableVersion]struct{}
}

// acquire returns the writer of tv, opening it when there is none, or
// when the one there belongs to a replaced client. Each acquire is paired
// with a release; in between, the append counts as in flight on the
// writer's client.
func (ws *writers) acquire(tv *tableVersion) (*writer, error) {
	g, err := ws.client.enter()
	if err != nil {
		return nil, err
	}
	tv.wmu.Lock()
	defer tv.wmu.Unlock()
	if w := tv.w; w != nil {
		if w.gen == g {
			w.users++
			return w, nil
		}
		ws.retireLocked(tv, w)
	}
	// NewManagedStream asks for the stream's metadata (GetWriteStream):
	// one unary call per table, on the client's connections.
	ms, err := g.mw.NewManagedStream(ws.life,
		managedwriter.WithDestinationTable(tv.parent),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(tv.dp),
		managedwriter.WithTraceID("sluice"),
	)
	if err != nil {
		ws.client.leave(g)
		return nil, fmt.Errorf("opening a writer for table %s: %w", tv.name, err)
	}
	w := &writer{ms: ms, gen: g, users: 1}
	tv.w = w
	ws.mu.Lock()
	ws.open[tv] = struct{}{}
	ws.mu.Unlock()
	metrics.BigQueryWriters.WithLabelValues(ws.pipeline).Inc()
	return w, nil
}

// release ends one use of w.
func (ws *writers) release(tv *tableVersion, w *writer) {
	tv.wmu.Lock()
	w.users--
	w.lastUsed = time.Now()
	if w.stale && w.users == 0 {
		ws.closeWriter(w)
	}
	tv.wmu.Unlock()
	ws.client.leave(w.gen)
}

// discard drops w after an error that may have broken it; the next
// acquire opens a new one.
func (ws *writers) discard(tv *tableVersion, w *writer) {
	tv.wmu.Lock()
	defer tv.wmu.Unlock()
	if tv.w == w {
		ws.retireLocked(tv, w)
	}
}

// retireLocked takes w out of tv (tv.wmu held); it is closed now if idle,
// else by its last release.
func (ws *writers) retireLocked(tv *tableVersion, w *writer) {
	tv.w = nil
	ws.mu.Lock()
	delete(ws.open, tv)
	ws.mu.Unlock()
	w.stale = true
	if w.users == 0 {
		ws.closeWriter(w)
	}
}

func (ws *writers) closeWriter(w *writer) {
	// Close detaches the writer from the client's connections; the error
	// it returns is the writer's terminal state (io.EOF once closed).
	_ = w.ms.Close()
	metrics.BigQueryWriters.WithLabelValues(ws.pipeline).Dec()
}

// closeIdle closes the writers unused since before, and those of the
// given versions (tables forgotten as idle) when not in use.
func (ws *writers) closeIdle(before time.Time, gone []*tableVersion) int {
	ws.mu.Lock()
	candidates := make([]*tableVersion, 0, len(ws.open))
	for tv := range ws.open {
		candidates = append(candidates, tv)
	}
	ws.mu.Unlock()
	isGone := make(map[*tableVersion]bool, len(gone))
	for _, tv := range gone {
		isGone[tv] = true
	}
	closed := 0
	for _, tv := range candidates {
		tv.wmu.Lock()
		if w := tv.w; w != nil && w.users == 0 && (w.lastUsed.Before(before) || isGone[tv]) {
			ws.retireLocked(tv, w)
			closed++
		}
		tv.wmu.Unlock()
	}
	return closed
}

// count is the number of open writers.
func (ws *writers) count() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.open)
}

// closeAll closes every writer; appends still running fail.
func (ws *writers) closeAll() {
	ws.mu.Lock()
	all := make([]*tableVersion, 0, len(ws.open))
	for tv := range ws.open {
		all = append(all, tv)
	}
	ws.mu.Unlock()
	for _, tv := range all {
		tv.wmu.Lock()
		if w := tv.w; w != nil {
			w.users = 0
			ws.retireLocked(tv, w)
		}
		tv.wmu.Unlock()
	}
}
