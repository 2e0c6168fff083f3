package bqemu

import (
	"context"
	"sync"
)

// tableKey names a table the way BigQuery's legacy SQL does: p:d.t.
type tableKey struct{ project, dataset, table string }

func (k tableKey) String() string { return k.project + ":" + k.dataset + "." + k.table }

func (k tableKey) parent() datasetKey { return datasetKey{k.project, k.dataset} }

type datasetKey struct{ project, dataset string }

func (k datasetKey) String() string { return k.project + ":" + k.dataset }

// rowStore keeps committed rows and the catalog's metadata. Rows are JSON
// objects in the emulator's canonical form (see values.go); metadata is the
// REST resource as JSON. The catalog serializes writes to one table, so a
// store is never asked to insert two batches into one table at once;
// implementations still guard their own state, since reads run concurrently.
type rowStore interface {
	// load returns every dataset and table resource, for a store reopened
	// from disk.
	load(ctx context.Context) (datasets map[datasetKey][]byte, tables map[tableKey][]byte, err error)
	putDataset(ctx context.Context, k datasetKey, meta []byte) error
	deleteDataset(ctx context.Context, k datasetKey) error
	putTable(ctx context.Context, k tableKey, meta []byte) error
	// deleteTable drops the table's resource and rows.
	deleteTable(ctx context.Context, k tableKey) error
	// insertRows appends rows, numbered from first (the table's row count
	// before the insert), atomically: all rows or none.
	insertRows(ctx context.Context, k tableKey, first int64, rows [][]byte) error
	// readRows returns up to limit rows starting at row index start.
	readRows(ctx context.Context, k tableKey, start int64, limit int) ([][]byte, error)
	// countRows returns the number of rows stored for the table.
	countRows(ctx context.Context, k tableKey) (int64, error)
	close() error
}

// memStore is the default rowStore: everything in memory, gone on Close.
type memStore struct {
	mu       sync.RWMutex
	datasets map[datasetKey][]byte
	tables   map[tableKey][]byte
	rows     map[tableKey][][]byte
}

func newMemStore() *memStore {
	return &memStore{
		datasets: make(map[datasetKey][]byte),
		tables:   make(map[tableKey][]byte),
		rows:     make(map[tableKey][][]byte),
	}
}

func (m *memStore) load(context.Context) (map[datasetKey][]byte, map[tableKey][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ds := make(map[datasetKey][]byte, len(m.datasets))
	for k, v := range m.datasets {
		ds[k] = v
	}
	ts := make(map[tableKey][]byte, len(m.tables))
	for k, v := range m.tables {
		ts[k] = v
	}
	return ds, ts, nil
}

func (m *memStore) putDataset(_ context.Context, k datasetKey, meta []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.datasets[k] = meta
	return nil
}

func (m *memStore) deleteDataset(_ context.Context, k datasetKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.datasets, k)
	return nil
}

func (m *memStore) putTable(_ context.Context, k tableKey, meta []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[k] = meta
	return nil
}

func (m *memStore) deleteTable(_ context.Context, k tableKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tables, k)
	delete(m.rows, k)
	return nil
}

func (m *memStore) insertRows(_ context.Context, k tableKey, first int64, rows [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if int64(len(m.rows[k])) != first {
		return invalidf("row numbering out of step for %s: have %d, insert at %d", k, len(m.rows[k]), first)
	}
	m.rows[k] = append(m.rows[k], rows...)
	return nil
}

func (m *memStore) readRows(_ context.Context, k tableKey, start int64, limit int) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := m.rows[k]
	if start >= int64(len(all)) {
		return nil, nil
	}
	end := min(int64(len(all)), start+int64(limit))
	// The backing array is only ever appended to, so this window is stable.
	return all[start:end:end], nil
}

func (m *memStore) countRows(_ context.Context, k tableKey) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.rows[k])), nil
}

func (m *memStore) close() error { return nil }
