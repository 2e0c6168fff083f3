package bigquery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/googleapi"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// tableVersion is a table's schema as last seen, with what writing to it
// needs: the row plan and descriptor derived from it (so they are cached
// per table and schema version) and the writer appending with that
// descriptor. A schema change makes a new version; a version is never
// modified but for its caches.
type tableVersion struct {
	name   string
	parent string // projects/{p}/datasets/{d}/tables/{t}
	schema bq.Schema
	etag   string
	plan   *rowPlan
	dp     *descriptorpb.DescriptorProto
	// covered caches, per Avro schema (by registry id, or by the codec's
	// *connector.Schema when it has none), whether this version takes its
	// records as they are.
	covered  sync.Map // coverageKey -> coverage
	nCovered atomic.Int32

	wmu sync.Mutex
	w   *writer // see writers.go
}

type coverage struct{ err error } // nil err: covered

// maxCovered bounds the schemas a version remembers: a codec handing out
// a new *connector.Schema per record must not grow it without end.
const maxCovered = 4096

func coverageKey(s *connector.Schema) any {
	if s.ID != 0 {
		return s.ID
	}
	return s
}

func (tv *tableVersion) coverage(s *connector.Schema) (coverage, bool) {
	c, ok := tv.covered.Load(coverageKey(s))
	if !ok {
		return coverage{}, false
	}
	return c.(coverage), true
}

func (tv *tableVersion) cover(s *connector.Schema, c coverage) {
	if tv.nCovered.Load() < maxCovered {
		if _, loaded := tv.covered.LoadOrStore(coverageKey(s), c); !loaded {
			tv.nCovered.Add(1)
		}
	}
}

// tableState is one destination table.
type tableState struct {
	mu       sync.Mutex // serialises the REST calls that change cur
	cur      atomic.Pointer[tableVersion]
	lastUsed atomic.Int64 // unix nanoseconds
}

// tableError is a destination that retrying cannot fix: missing without
// create_tables, a schema the Storage Write API cannot take.
type tableError struct {
	table string
	err   error
}

func (e *tableError) Error() string { return e.err.Error() }
func (e *tableError) Unwrap() error { return e.err }

// tables keeps the destination tables of one sink.
type tables struct {
	cfg      config.BigQuerySink
	rest     *bq.Client
	log      *slog.Logger
	pipeline string
	meta     bq.Schema // configured metadata columns

	mu sync.Mutex
	m  map[string]*tableState
}

func (t *tables) state(name string) *tableState {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.m[name]
	if ts == nil {
		ts = &tableState{}
		t.m[name] = ts
	}
	ts.lastUsed.Store(time.Now().UnixNano())
	return ts
}

func (t *tables) ref(name string) *bq.Table {
	return t.rest.DatasetInProject(t.cfg.Project, t.cfg.Dataset).Table(name)
}

// current returns the table's version, reading (or, with create_tables,
// creating) the table on first use.
func (t *tables) current(ctx context.Context, name string, recs []*connector.Record) (*tableVersion, error) {
	ts := t.state(name)
	if tv := ts.cur.Load(); tv != nil {
		return tv, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tv := ts.cur.Load(); tv != nil {
		return tv, nil
	}
	ref := t.ref(name)
	md, err := ref.Metadata(ctx)
	if httpCode(err) == 404 {
		if !t.cfg.CreateTables {
			return nil, &tableError{name, fmt.Errorf("table %s.%s.%s does not exist and create_tables is false", t.cfg.Project, t.cfg.Dataset, name)}
		}
		md, err = t.create(ctx, ref, name, recs)
	}
	if err != nil {
		return nil, fmt.Errorf("reading table %s: %w", name, err)
	}
	tv, err := t.version(name, md)
	if err != nil {
		return nil, err
	}
	ts.cur.Store(tv)
	return tv, nil
}

// create creates the table with the columns of recs (and the dataset
// when allowed), and returns its metadata. Another process creating it at
// the same time is fine.
func (t *tables) create(ctx context.Context, ref *bq.Table, name string, recs []*connector.Record) (*bq.TableMetadata, error) {
	var schema bq.Schema
	seen := map[*connector.Schema]bool{}
	for _, r := range recs {
		switch {
		case r.Schema != nil:
			if !seen[r.Schema] {
				seen[r.Schema] = true
				schema, _, _ = mergeSchema(schema, columnsFromSchema(r.Schema), "")
			}
		case r.Fields != nil:
			schema, _, _ = mergeSchema(schema, inferColumns(r.Fields), "")
		}
	}
	schema, _, _ = mergeSchema(schema, t.meta, "")
	err := ref.Create(ctx, t.newTableMetadata(schema))
	if httpCode(err) == 404 { // the dataset is missing
		if !t.cfg.CreateDataset {
			return nil, &tableError{name, fmt.Errorf("dataset %s.%s does not exist and create_dataset is false", t.cfg.Project, t.cfg.Dataset)}
		}
		ds := t.rest.DatasetInProject(t.cfg.Project, t.cfg.Dataset)
		if err := ds.Create(ctx, &bq.DatasetMetadata{Location: t.cfg.Location}); err != nil && httpCode(err) != 409 {
			return nil, fmt.Errorf("creating dataset %s: %w", t.cfg.Dataset, err)
		}
		t.log.Info("created BigQuery dataset", "project", t.cfg.Project, "dataset", t.cfg.Dataset, "location", t.cfg.Location)
		err = ref.Create(ctx, t.newTableMetadata(schema))
	}
	switch {
	case err == nil:
		metrics.BigQueryTableChanges.WithLabelValues(t.pipeline, "create").Inc()
		t.log.Debug("created BigQuery table", "table", name, "columns", schemaString(schema))
	case httpCode(err) == 409: // created meanwhile by another writer
	case httpCode(err) == 400:
		return nil, &tableError{name, fmt.Errorf("creating table %s: %w", name, err)}
	default:
		return nil, fmt.Errorf("creating table %s: %w", name, err)
	}
	return ref.Metadata(ctx)
}

func (t *tables) version(name string, md *bq.TableMetadata) (*tableVersion, error) {
	plan, dp, err := tableDescriptor(md.Schema)
	if err != nil {
		return nil, &tableError{name, fmt.Errorf("table %s cannot be written through the Storage Write API: %w", name, err)}
	}
	return &tableVersion{
		name:   name,
		parent: managedwriter.TableParentFromParts(t.cfg.Project, t.cfg.Dataset, name),
		schema: md.Schema, etag: md.ETag, plan: plan, dp: dp,
	}, nil
}

// fit returns a version of the table that takes recs, adding the columns
// they bring as NULLABLE (BigQuery allows nothing else). Records whose
// fields cannot go into the existing columns (a type changed) are
// returned as rejected, with the reason.
func (t *tables) fit(ctx context.Context, name string, tv *tableVersion, recs []*connector.Record) (*tableVersion, map[*connector.Record]*connector.RecordError, error) {
	for attempt := 0; ; attempt++ {
		want, growers, rejected := t.needs(tv, recs)
		if want == nil {
			return tv, rejected, nil
		}
		if attempt == 5 {
			return nil, nil, fmt.Errorf("evolving the schema of table %s: it changed under us %d times", name, attempt)
		}
		next, err := t.evolve(ctx, name, tv, want)
		if code := httpCode(err); code == 400 {
			// BigQuery refuses the new schema (too many columns, ...).
			for _, r := range growers {
				rejected[r] = &connector.RecordError{Record: r, Reason: "schema", Err: fmt.Errorf("adding its fields to table %s: %w", name, err)}
			}
			return tv, rejected, nil
		}
		if err != nil {
			return nil, nil, err
		}
		tv = next
	}
}

// needs returns the schema the table must grow to for recs (nil: none),
// the records that need it, and the records it can never take.
func (t *tables) needs(tv *tableVersion, recs []*connector.Record) (bq.Schema, []*connector.Record, map[*connector.Record]*connector.RecordError) {
	rejected := map[*connector.Record]*connector.RecordError{}
	schema, grown := tv.schema, false
	var growers []*connector.Record
	if merged, ch, _ := mergeSchema(schema, t.meta, ""); ch {
		// Metadata columns configured after the table was made.
		schema, grown, growers = merged, true, recs
	}
	seen := map[*connector.Schema]bool{} // schemas merged into schema already
	for _, r := range recs {
		switch {
		case r.Schema != nil:
			if c, ok := tv.coverage(r.Schema); ok {
				if err := c.err; err != nil {
					rejected[r] = &connector.RecordError{Record: r, Reason: "schema", Err: err}
				}
				continue
			}
			if seen[r.Schema] {
				growers = append(growers, r)
				continue
			}
			cols := append(columnsFromSchema(r.Schema), t.meta...)
			_, changed, conflicts := mergeSchema(tv.schema, cols, "")
			if len(conflicts) > 0 {
				err := typeChangeError(tv.name, r.Schema, conflicts)
				tv.cover(r.Schema, coverage{err})
				rejected[r] = &connector.RecordError{Record: r, Reason: "schema", Err: err}
				continue
			}
			if !changed {
				tv.cover(r.Schema, coverage{})
				continue
			}
			growers = append(growers, r)
			seen[r.Schema] = true
			var ch bool
			schema, ch, _ = mergeSchema(schema, cols, "")
			grown = grown || ch
		case r.Fields != nil && !tv.plan.covers(r.Fields):
			var ch bool
			schema, ch, _ = mergeSchema(schema, inferColumns(r.Fields), "")
			grown = grown || ch
			growers = append(growers, r)
		}
	}
	if !grown {
		return nil, nil, rejected
	}
	return schema, growers, rejected
}

// evolve patches the table's schema to want, guarded by the etag of tv.
// If the table changed since tv, it returns the current version instead
// and the caller looks again.
func (t *tables) evolve(ctx context.Context, name string, tv *tableVersion, want bq.Schema) (*tableVersion, error) {
	ts := t.state(name)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if cur := ts.cur.Load(); cur != tv && cur != nil {
		return cur, nil
	}
	ref := t.ref(name)
	md, err := ref.Update(ctx, bq.TableMetadataToUpdate{Schema: want}, tv.etag)
	switch code := httpCode(err); {
	case code == 412: // changed by someone else since we read it
		md, err = ref.Metadata(ctx)
	case err == nil:
		metrics.BigQueryTableChanges.WithLabelValues(t.pipeline, "add_columns").Inc()
		t.log.Info("added columns to BigQuery table", "table", name, "columns", schemaString(added(tv.schema, want)))
	}
	if err != nil {
		return nil, fmt.Errorf("updating the schema of table %s: %w", name, err)
	}
	next, err := t.version(name, md)
	if err != nil {
		return nil, err
	}
	ts.cur.Store(next)
	return next, nil
}

// refresh reads the table again after an append said its schema is not
// what tv says. It returns the current version (tv itself when nothing
// changed).
func (t *tables) refresh(ctx context.Context, stale *tableVersion) (*tableVersion, error) {
	ts := t.state(stale.name)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if cur := ts.cur.Load(); cur != stale && cur != nil {
		return cur, nil
	}
	md, err := t.ref(stale.name).Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading table %s: %w", stale.name, err)
	}
	if md.ETag == stale.etag {
		return stale, nil
	}
	next, err := t.version(stale.name, md)
	if err != nil {
		return nil, err
	}
	ts.cur.Store(next)
	return next, nil
}

// forget drops what is known of a table that was not found, so that the
// next use reads (or creates) it again.
func (t *tables) forget(stale *tableVersion) {
	ts := t.state(stale.name)
	ts.cur.CompareAndSwap(stale, nil)
}

// idle removes the tables unused since before, and returns their versions
// (for their writers to be closed).
func (t *tables) idle(before time.Time) []*tableVersion {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*tableVersion
	for name, ts := range t.m {
		if ts.lastUsed.Load() < before.UnixNano() {
			if tv := ts.cur.Load(); tv != nil {
				out = append(out, tv)
			}
			delete(t.m, name)
		}
	}
	return out
}

// added lists the columns of next that prev lacks (top level).
func added(prev, next bq.Schema) bq.Schema {
	var out bq.Schema
	for _, c := range next {
		if findColumn(prev, c.Name) < 0 {
			out = append(out, c)
		}
	}
	return out
}

// httpCode is the HTTP status of a REST API error, 0 for other errors.
func httpCode(err error) int {
	var e *googleapi.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// restPermanent reports REST errors retrying cannot fix: bad credentials
// and denied access (but not rate limits, which BigQuery also answers
// with 403).
func restPermanent(err error) bool {
	var e *googleapi.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case 401:
		return true
	case 403:
		for _, item := range e.Errors {
			switch item.Reason {
			case "rateLimitExceeded", "quotaExceeded", "backendError":
				return false
			}
		}
		return true
	}
	return false
}
