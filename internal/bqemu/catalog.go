package bqemu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bq "google.golang.org/api/bigquery/v2"
)

// catalog holds datasets and tables. Metadata lives in memory and is
// written through to the rowStore, which also holds committed rows.
type catalog struct {
	store    rowStore
	location string

	mu       sync.RWMutex
	datasets map[datasetKey]*bq.Dataset
	tables   map[tableKey]*tableState
}

// tableState is one table. Its mutex orders commits of rows (so row
// numbers in the store are dense) against schema changes and deletion.
type tableState struct {
	key tableKey

	mu      sync.Mutex
	meta    *bq.Table // never mutated after publication; replaced on patch
	version int64     // bumped on each schema change
	numRows int64
	deleted bool
}

// schema returns the table's current schema and its version.
func (t *tableState) schema() ([]*bq.TableFieldSchema, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.meta.Schema == nil {
		return nil, t.version
	}
	return t.meta.Schema.Fields, t.version
}

func newCatalog(ctx context.Context, store rowStore, location string) (*catalog, error) {
	c := &catalog{
		store:    store,
		location: location,
		datasets: make(map[datasetKey]*bq.Dataset),
		tables:   make(map[tableKey]*tableState),
	}
	datasets, tables, err := store.load(ctx)
	if err != nil {
		return nil, err
	}
	for k, raw := range datasets {
		var ds bq.Dataset
		if err := json.Unmarshal(raw, &ds); err != nil {
			return nil, fmt.Errorf("decoding stored dataset %s: %w", k, err)
		}
		c.datasets[k] = &ds
	}
	for k, raw := range tables {
		var t bq.Table
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("decoding stored table %s: %w", k, err)
		}
		n, err := store.countRows(ctx, k)
		if err != nil {
			return nil, err
		}
		c.tables[k] = &tableState{key: k, meta: &t, version: 1, numRows: n}
	}
	return c, nil
}

func etag(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 36) }

func (c *catalog) insertDataset(ctx context.Context, project string, in *bq.Dataset) (*bq.Dataset, error) {
	if in.DatasetReference == nil || in.DatasetReference.DatasetId == "" {
		return nil, invalidf("Required parameter is missing: datasetReference.datasetId")
	}
	k := datasetKey{project, in.DatasetReference.DatasetId}
	now := time.Now()
	ds := *in
	ds.Kind = "bigquery#dataset"
	ds.Id = k.String()
	ds.DatasetReference = &bq.DatasetReference{ProjectId: k.project, DatasetId: k.dataset}
	ds.CreationTime, ds.LastModifiedTime = now.UnixMilli(), now.UnixMilli()
	ds.Etag = etag(now)
	ds.SelfLink = "/bigquery/v2/projects/" + k.project + "/datasets/" + k.dataset
	ds.Type = "DEFAULT"
	if ds.Location == "" {
		ds.Location = c.location
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.datasets[k]; ok {
		return nil, duplicatef("Dataset %s", k)
	}
	if err := c.putDataset(ctx, k, &ds); err != nil {
		return nil, err
	}
	c.datasets[k] = &ds
	return &ds, nil
}

func (c *catalog) putDataset(ctx context.Context, k datasetKey, ds *bq.Dataset) error {
	raw, err := json.Marshal(ds)
	if err != nil {
		return fmt.Errorf("encoding dataset %s: %w", k, err)
	}
	return c.store.putDataset(ctx, k, raw)
}

func (c *catalog) dataset(k datasetKey) (*bq.Dataset, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ds, ok := c.datasets[k]
	if !ok {
		return nil, notFoundf("Dataset %s", k)
	}
	return ds, nil
}

func (c *catalog) listDatasets(project string) []*bq.Dataset {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*bq.Dataset
	for k, ds := range c.datasets {
		if k.project == project {
			out = append(out, ds)
		}
	}
	slices.SortFunc(out, func(a, b *bq.Dataset) int { return strings.Compare(a.Id, b.Id) })
	return out
}

// deleteDataset drops a dataset; with tables in it only if deleteContents,
// as BigQuery does.
func (c *catalog) deleteDataset(ctx context.Context, k datasetKey, deleteContents bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.datasets[k]; !ok {
		return notFoundf("Dataset %s", k)
	}
	var inside []*tableState
	for tk, t := range c.tables {
		if tk.parent() == k {
			inside = append(inside, t)
		}
	}
	if len(inside) > 0 && !deleteContents {
		return invalidf("Dataset %s is still in use", k)
	}
	for _, t := range inside {
		if err := c.dropTable(ctx, t); err != nil {
			return err
		}
	}
	if err := c.store.deleteDataset(ctx, k); err != nil {
		return err
	}
	delete(c.datasets, k)
	return nil
}

func (c *catalog) insertTable(ctx context.Context, dk datasetKey, in *bq.Table) (*bq.Table, error) {
	if in.TableReference == nil || in.TableReference.TableId == "" {
		return nil, invalidf("Required parameter is missing: tableReference.tableId")
	}
	k := tableKey{dk.project, dk.dataset, in.TableReference.TableId}
	t := *in
	if in.Schema != nil {
		fields, err := normalizeFields(in.Schema.Fields, "")
		if err != nil {
			return nil, err
		}
		t.Schema = &bq.TableSchema{Fields: fields}
	}
	if err := checkTableSpec(&t); err != nil {
		return nil, err
	}
	now := time.Now()
	t.Kind = "bigquery#table"
	t.Id = k.String()
	t.TableReference = &bq.TableReference{ProjectId: k.project, DatasetId: k.dataset, TableId: k.table}
	t.CreationTime, t.LastModifiedTime = now.UnixMilli(), uint64(now.UnixMilli())
	t.Etag = etag(now)
	t.SelfLink = "/bigquery/v2/projects/" + k.project + "/datasets/" + k.dataset + "/tables/" + k.table
	if t.Type == "" {
		t.Type = "TABLE"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ds, ok := c.datasets[dk]
	if !ok {
		return nil, notFoundf("Dataset %s", dk)
	}
	t.Location = ds.Location
	if _, ok := c.tables[k]; ok {
		return nil, duplicatef("Table %s", k)
	}
	if err := c.putTable(ctx, k, &t); err != nil {
		return nil, err
	}
	c.tables[k] = &tableState{key: k, meta: &t, version: 1}
	return &t, nil
}

func (c *catalog) putTable(ctx context.Context, k tableKey, t *bq.Table) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encoding table %s: %w", k, err)
	}
	return c.store.putTable(ctx, k, raw)
}

func (c *catalog) table(k tableKey) (*tableState, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.tables[k]
	if !ok {
		return nil, notFoundf("Table %s", k)
	}
	return t, nil
}

// tableResource returns the table's REST resource with its current row count.
func (c *catalog) tableResource(k tableKey) (*bq.Table, error) {
	t, err := c.table(k)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := *t.meta
	out.NumRows = uint64(t.numRows)
	out.ForceSendFields = []string{"NumRows"}
	return &out, nil
}

// patchTable applies a tables.patch (or, with replace, tables.update).
// ifMatch is the request's If-Match etag, or "".
func (c *catalog) patchTable(ctx context.Context, k tableKey, in *bq.Table, ifMatch string) (*bq.Table, error) {
	t, err := c.table(k)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		return nil, notFoundf("Table %s", k)
	}
	if ifMatch != "" && ifMatch != "*" && ifMatch != t.meta.Etag {
		return nil, preconditionf("Precondition check failed.")
	}
	next := *t.meta
	schemaChanged := false
	if in.Schema != nil {
		fields, err := normalizeFields(in.Schema.Fields, "")
		if err != nil {
			return nil, err
		}
		var prev []*bq.TableFieldSchema
		if t.meta.Schema != nil {
			prev = t.meta.Schema.Fields
		}
		if err := checkSchemaEvolution(prev, fields, ""); err != nil {
			return nil, err
		}
		next.Schema = &bq.TableSchema{Fields: fields}
		schemaChanged = true
	}
	if in.Description != "" {
		next.Description = in.Description
	}
	if in.FriendlyName != "" {
		next.FriendlyName = in.FriendlyName
	}
	if in.Labels != nil {
		next.Labels = in.Labels
	}
	if in.ExpirationTime != 0 {
		next.ExpirationTime = in.ExpirationTime
	}
	if err := patchTableSpec(&next, in); err != nil {
		return nil, err
	}
	now := time.Now()
	next.LastModifiedTime = uint64(now.UnixMilli())
	next.Etag = etag(now)
	if err := c.putTable(ctx, k, &next); err != nil {
		return nil, err
	}
	t.meta = &next
	if schemaChanged {
		t.version++
	}
	out := next
	out.NumRows = uint64(t.numRows)
	out.ForceSendFields = []string{"NumRows"}
	return &out, nil
}

func (c *catalog) listTables(dk datasetKey) ([]*bq.Table, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.datasets[dk]; !ok {
		return nil, notFoundf("Dataset %s", dk)
	}
	var out []*bq.Table
	for k, t := range c.tables {
		if k.parent() == dk {
			t.mu.Lock()
			out = append(out, t.meta)
			t.mu.Unlock()
		}
	}
	slices.SortFunc(out, func(a, b *bq.Table) int { return strings.Compare(a.Id, b.Id) })
	return out, nil
}

func (c *catalog) deleteTable(ctx context.Context, k tableKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tables[k]
	if !ok {
		return notFoundf("Table %s", k)
	}
	return c.dropTable(ctx, t)
}

// dropTable removes t; the caller holds c.mu.
func (c *catalog) dropTable(ctx context.Context, t *tableState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := c.store.deleteTable(ctx, t.key); err != nil {
		return err
	}
	t.deleted = true
	delete(c.tables, t.key)
	return nil
}

// commitRows makes rows (canonical JSON objects) visible in the table, all
// or none.
func (c *catalog) commitRows(ctx context.Context, t *tableState, rows [][]byte) error {
	if len(rows) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		return notFoundf("Table %s", t.key)
	}
	if err := c.store.insertRows(ctx, t.key, t.numRows, rows); err != nil {
		return err
	}
	t.numRows += int64(len(rows))
	return nil
}

// readRows returns committed rows [start, start+limit) and the total count.
func (c *catalog) readRows(ctx context.Context, t *tableState, start int64, limit int) ([][]byte, int64, error) {
	t.mu.Lock()
	total := t.numRows
	t.mu.Unlock()
	if start >= total {
		return nil, total, nil
	}
	rows, err := c.store.readRows(ctx, t.key, start, limit)
	return rows, total, err
}
