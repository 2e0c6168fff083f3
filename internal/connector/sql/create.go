package sql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// createFrom creates the table (create_table) from the first record of
// batch whose fields fit: one with more than max_columns fields, or whose
// columns the database refuses (too many, a row too wide), is passed over.
// Passed-over records are rejected later, when they are mapped to the new
// table (add_columns), or written without the fields it lacks. When no
// record with fields fits, the table takes the metadata columns alone from
// a record that has none; when every record of the batch was passed over,
// it returns a *connector.BatchError rejecting them all, and no table is
// created.
func (s *Sink) createFrom(ctx context.Context, batch []*connector.Record) error {
	var bad []*connector.RecordError
	passed := map[*connector.Record]bool{}
	try := func(rec, shaped *connector.Record) (bool, error) {
		err := s.createTable(ctx, shaped)
		var re *connector.RecordError
		if errors.As(err, &re) {
			re.Record = rec
			bad = append(bad, re)
			passed[rec] = true
			return false, nil
		}
		return err == nil, err
	}
	for _, r := range batch {
		if shaped := s.shaped(ctx, r); shaped != nil {
			if ok, err := try(r, shaped); ok || err != nil {
				return err
			}
		}
	}
	for _, r := range batch {
		if !passed[r] {
			_, err := try(r, r)
			return err
		}
	}
	return &connector.BatchError{Failed: bad}
}

// createTable creates the table from the shape of rec: one nullable column
// per field, in the record's order, typed from the schema when the codec
// knows one (Avro) and from the value otherwise (JSON: an integer becomes
// bigint, a fraction double precision, an object jsonb); then the metadata
// columns and, with a merge, _sluice_batch. A record that would make more
// than max_columns columns, or columns the database refuses, is a
// *connector.RecordError (with no record: the caller names it).
func (s *Sink) createTable(ctx context.Context, rec *connector.Record) error {
	t := s.table
	cols := shapeColumns(rec, &s.cfg, s.cfg.Merge != nil, s.log)
	if len(cols) == 0 {
		return connector.Permanent(fmt.Errorf("creating table %s: the first record (offset %d) has no fields to make columns of", t, rec.Offset))
	}
	if limit := s.maxColumns(); len(cols) > limit {
		err := fmt.Errorf("create_table: table %s would need %d columns for this record, more than max_columns (%d)", t, len(cols), limit)
		if s.cfg.Columns != nil {
			return connector.Permanent(fmt.Errorf("creating table %s: columns maps %d columns, more than max_columns (%d)", t, len(cols), limit))
		}
		return &connector.RecordError{Reason: "too_many_columns", Err: err}
	}
	d := s.db.dialect()
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = d.q.ident(c.name) + " " + d.columnType(c)
		if c.notNull {
			defs[i] += " NOT NULL DEFAULT 0"
		}
	}
	stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", d.q.table(t), strings.Join(defs, ", "))
	if err := execDDL(ctx, s.db, stmt); err != nil {
		if s.db.classify(err) == errData {
			return &connector.RecordError{Reason: "too_many_columns",
				Err: fmt.Errorf("create_table: the database refuses table %s with the %d columns of this record: %w", t, len(cols), err)}
		}
		return wrap(s.db, "creating table "+t.String(), err)
	}
	s.log.Info("created table from the first record", "table", t.String(), "columns", len(cols))
	return nil
}

// maxColumns is the most columns create_table and add_columns give the
// table (max_columns, or the database's default).
func (s *Sink) maxColumns() int {
	if s.cfg.MaxColumns > 0 {
		return s.cfg.MaxColumns
	}
	return config.SQLDefaultMaxColumns[s.kind]
}

// shaped is rec with its fields decoded (when the sink visits values
// itself), or nil when it has none or they do not decode.
func (s *Sink) shaped(ctx context.Context, rec *connector.Record) *connector.Record {
	if s.visitor == nil {
		if rec.Fields != nil {
			return rec
		}
		return nil
	}
	var fields map[string]any
	schema, err := s.visitor.VisitFields(ctx, rec, func(k string, v any) {
		if fields == nil {
			fields = map[string]any{}
		}
		fields[k] = v
	})
	if err != nil || fields == nil {
		return nil
	}
	shaped := *rec
	shaped.Fields, shaped.Schema = fields, schema
	return &shaped
}

// evolve adds the columns the records of pr bring (add_columns) and maps
// the batch again with the wider table. Records whose new fields would
// pass max_columns, or that the database cannot widen the table for, are
// left out of the rows and returned in the prepared batch's bad records.
func (s *Sink) evolve(ctx context.Context, pr *prepared, batch []*connector.Record) (*mapper, *prepared, error) {
	m, rejected, err := s.addColumns(ctx, pr.newFields, batch)
	if err != nil {
		return nil, nil, err
	}
	next, err := prepare(ctx, m, batch)
	if err != nil || len(rejected) == 0 {
		return m, next, err
	}
	out := &prepared{m: next.m, p: next.p, bad: slices.Clip(next.bad)}
	reported := map[*connector.Record]bool{}
	for _, re := range next.bad {
		reported[re.Record] = true
	}
	for _, re := range rejected {
		if !reported[re.Record] {
			out.bad = append(out.bad, re)
			reported[re.Record] = true
		}
	}
	out.rows = make([]row, 0, len(next.rows))
	for _, r := range next.rows {
		if !reported[r.rec] {
			out.rows = append(out.rows, r)
		}
	}
	return m, out, nil
}

// addColumns adds a nullable column for each new field (add_columns),
// typed as createTable types them, and returns the mapper of the wider
// table. It widens the table record by record, in batch order, each
// record's new columns in one transaction (MySQL: one ALTER TABLE), so a
// table is never left with part of a record's columns: a record whose new
// fields would pass max_columns, or whose columns the database refuses, is
// returned as rejected, and the table is not altered for it.
//
// Fields it cannot add (not plain column names, or names a column already
// takes for something else) are warned about once and ignored from then
// on. Another writer or process adding the same columns first is fine:
// the table is described again either way.
func (s *Sink) addColumns(ctx context.Context, fields map[string]sample, batch []*connector.Record) (*mapper, []*connector.RecordError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.db.describe(ctx, s.table)
	if err != nil || t == nil {
		return nil, nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(err, errors.New("table not found")))
	}
	ignored := maps.Clone(s.ignored)
	if ignored == nil {
		ignored = map[string]bool{}
	}
	byRecord := map[*connector.Record][]string{}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if t.lookup(name) >= 0 {
			continue
		}
		if !dataName.MatchString(name) {
			s.log.Warn("add_columns: field name is not a plain column name; no column made for it", "table", s.table.String(), "field", name)
			ignored[name] = true
			continue
		}
		for _, r := range fields[name].recs {
			byRecord[r] = append(byRecord[r], name)
		}
	}
	var rejected []*connector.RecordError
	var added []string
	notAdded := map[string]bool{} // fields of rejected records
	have, limit := len(t.cols), s.maxColumns()
	d := s.db.dialect()
	present := map[string]bool{} // added here since t was described
	has := func(t *table, name string) bool { return present[name] || t.lookup(name) >= 0 }
	for _, rec := range batch {
		var names []string
		for _, name := range byRecord[rec] {
			if !has(t, name) && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			continue
		}
		reject := func(err error) {
			rejected = append(rejected, &connector.RecordError{Record: rec, Reason: "too_many_columns", Err: err})
			for _, n := range names {
				notAdded[n] = true
			}
		}
		if have+len(names) > limit {
			reject(fmt.Errorf("add_columns: table %s has %d columns; the %d new fields of this record (offset %d) would make %d, more than max_columns (%d)",
				s.table, have, len(names), rec.Offset, have+len(names), limit))
			continue
		}
		cols := make([]newColumn, len(names))
		for i, name := range names {
			cols[i] = sampleColumn(name, fields[name])
		}
		err := probeColumns(ctx, s.db, s.table, cols)
		if err != nil && s.db.classify(err) != errData {
			// No temporary tables for this user, say: add them unchecked.
			s.log.Warn("add_columns: could not check the new columns on a temporary copy of the table; adding them unchecked", "table", s.table.String(), "err", err)
			err = nil
		}
		if err == nil {
			err = execDDL(ctx, s.db, addColumnStatements(d, s.table, cols)...)
		}
		if err == nil {
			for _, c := range cols {
				present[c.name] = true
				added = append(added, c.name+" "+d.columnType(c))
			}
			have += len(cols)
			continue
		}
		// Another writer may have added them meanwhile.
		now, derr := s.db.describe(ctx, s.table)
		if derr != nil || now == nil {
			return nil, nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(derr, err, errors.New("table not found")))
		}
		t, have = now, len(now.cols) // holds what this loop added too
		if slices.ContainsFunc(names, func(n string) bool { return !has(t, n) }) {
			if s.db.classify(err) != errData {
				return nil, nil, wrap(s.db, fmt.Sprintf("adding %d columns to %s", len(names), s.table), err)
			}
			reject(fmt.Errorf("add_columns: the database refuses %d more columns on table %s (%d columns) for this record (offset %d): %w",
				len(names), s.table, have, rec.Offset, err))
		}
	}
	if len(added) > 0 {
		s.log.Info("added columns for new fields", "table", s.table.String(), "columns", strings.Join(added, ", "))
		if t, err = s.db.describe(ctx, s.table); err != nil || t == nil {
			return nil, nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(err, errors.New("table not found")))
		}
	}
	s.ignored = ignored
	if err := s.useTable(t); err != nil {
		return nil, nil, err
	}
	m := s.mapper
	for name := range fields {
		if notAdded[name] {
			continue // a later record may still bring it within the limit
		}
		if i := m.t.lookup(name); i < 0 || m.src[i].kind != srcField {
			if !ignored[name] {
				s.log.Warn("add_columns: a column of that name is not written from fields; the field is left out", "table", s.table.String(), "field", name)
			}
			ignored[name] = true // m.ignored is this map; m is not shared before s.mu is released
		}
	}
	return m, rejected, nil
}

// sampleColumn types the column of a new field from its sample.
func sampleColumn(name string, smp sample) newColumn {
	c := shapeOf(smp.v)
	if smp.schema != nil {
		for _, f := range smp.schema.Fields {
			if f.Name == name {
				c = shapeOfField(f)
			}
		}
	}
	c.name = name
	return c
}

// addColumnStatements adds cols to t: one ALTER TABLE where the database
// takes several ADD COLUMN clauses (PostgreSQL, MySQL), one per column
// otherwise (SQLite, whose DDL is transactional: execDDL runs them in one
// transaction).
func addColumnStatements(d *dialect, t tableName, cols []newColumn) []string {
	adds := make([]string, len(cols))
	for i, c := range cols {
		adds[i] = "ADD COLUMN " + d.q.ident(c.name) + " " + d.columnType(c)
	}
	if d.name == "sqlite" {
		out := make([]string, len(adds))
		for i, a := range adds {
			out[i] = "ALTER TABLE " + d.q.table(t) + " " + a
		}
		return out
	}
	return []string{"ALTER TABLE " + d.q.table(t) + " " + strings.Join(adds, ", ")}
}

// probeColumns checks on an empty copy that MySQL can add cols to t.
// MariaDB and MySQL add columns in place without checking InnoDB's row
// size, which then refuses every row with values in them (error 1118);
// a copying ALTER of an empty temporary table checks it first, cheaply.
// The other databases check their limits when the column is added.
func probeColumns(ctx context.Context, db database, t tableName, cols []newColumn) error {
	d := db.dialect()
	if d.name != "mysql" {
		return nil
	}
	probe := d.q.table(tableName{schema: t.schema, name: "sluice_probe_columns"})
	return execDDL(ctx, db,
		"DROP TEMPORARY TABLE IF EXISTS "+probe,
		"CREATE TEMPORARY TABLE "+probe+" LIKE "+d.q.table(t),
		addColumnStatements(d, tableName{schema: t.schema, name: "sluice_probe_columns"}, cols)[0]+", ALGORITHM=COPY",
		"DROP TEMPORARY TABLE "+probe)
}

// execDDL runs statements in one transaction.
func execDDL(ctx context.Context, db database, stmts ...string) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx))
	release, err := lockDDL(ctx, tx, db.dialect())
	if err != nil {
		return err
	}
	defer release()
	for _, stmt := range stmts {
		if err := tx.exec(ctx, stmt); err != nil {
			return err
		}
	}
	release()
	return tx.commit(ctx)
}

// ddlLockName is the database lock that serialises Sluice's DDL: tables
// created from the first record (create_table), columns added for new
// fields (add_columns) and the bookkeeping tables. Two processes starting
// at once otherwise both run CREATE TABLE IF NOT EXISTS, and PostgreSQL
// refuses the second with "duplicate key value violates unique constraint
// pg_type_typname_nsp_index" or "relation already exists" (its IF NOT
// EXISTS check is not atomic with the creation). It is the merges' kind of
// lock (a PostgreSQL advisory lock, a MySQL named lock), but one per
// database rather than per pipeline: two pipelines may create the same
// table, and DDL must not wait for a merge.
const ddlLockName = "sluice.ddl"

// ddlLockWait bounds how long DDL waits for another process's DDL.
const ddlLockWait = 60

// lockDDL takes the DDL lock in tx and returns what releases it, which
// the caller runs once the DDL is done and before tx ends (it runs only
// once; a deferred call after that does nothing). PostgreSQL's transaction-scoped advisory lock is
// released by the commit or rollback itself; MySQL's named lock belongs to
// the connection, so release gives it back before the connection returns
// to the pool (MySQL commits DDL at once, so nothing waits for the
// transaction's end). SQLite's DDL is transactional and its writers
// serialised already.
func lockDDL(ctx context.Context, tx txn, d *dialect) (release func(), err error) {
	switch d.name {
	case "postgres":
		if err := tx.exec(ctx, "SELECT pg_advisory_xact_lock(?)", lockKeyOf(ddlLockName)); err != nil {
			return nil, fmt.Errorf("taking the DDL lock: %w", err)
		}
	case "mysql":
		rows, err := tx.query(ctx, "SELECT GET_LOCK(?, ?)", ddlLockName, ddlLockWait)
		if err != nil {
			return nil, fmt.Errorf("taking the DDL lock: %w", err)
		}
		var got *int64
		if rows.Next() {
			err = rows.Scan(&got)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err == nil && (got == nil || *got != 1) {
			err = fmt.Errorf("another process held it for %d s", ddlLockWait)
		}
		if err != nil {
			return nil, fmt.Errorf("taking the DDL lock %s: %w", ddlLockName, err)
		}
		released := false
		return func() {
			if !released {
				released = true
				_ = tx.exec(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", ddlLockName)
			}
		}, nil
	}
	return func() {}, nil
}

func shapeColumns(rec *connector.Record, cfg *config.SQLSink, withBatch bool, log *slog.Logger) []newColumn {
	var cols []newColumn
	seen := map[string]bool{}
	add := func(c newColumn) {
		if !dataName.MatchString(c.name) {
			log.Warn("create_table: field name is not a plain column name; no column made for it", "field", c.name)
			return
		}
		if l := strings.ToLower(c.name); !seen[l] {
			seen[l] = true
			cols = append(cols, c)
		}
	}
	if cfg.Columns != nil {
		names := make([]string, 0, len(cfg.Columns))
		for n := range cfg.Columns {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			from := strings.TrimSpace(cfg.Columns[n])
			if k, ok := metadataKind[from]; ok {
				add(newColumn{name: n, kind: k})
				continue
			}
			c := shapeOf(fieldValue(rec.Fields, strings.Split(from, ".")))
			c.name = n
			add(c)
		}
	} else {
		for _, name := range fieldOrder(rec) {
			c := shapeOf(rec.Fields[name])
			if rec.Schema != nil {
				for _, f := range rec.Schema.Fields {
					if f.Name == name {
						c = shapeOfField(f)
					}
				}
			}
			c.name = name
			add(c)
		}
	}
	for _, m := range cfg.Metadata {
		add(newColumn{name: m, kind: metadataKind[m]})
	}
	if withBatch {
		add(newColumn{name: colBatch, kind: kindInt, bits: 64, notNull: true})
	}
	return cols
}

// fieldOrder is the record's field names in their order: the schema's,
// else the JSON document's, else sorted.
func fieldOrder(rec *connector.Record) []string {
	if rec.Schema != nil && len(rec.Schema.Fields) > 0 {
		out := make([]string, 0, len(rec.Schema.Fields))
		for _, f := range rec.Schema.Fields {
			out = append(out, f.Name)
		}
		return out
	}
	// The document's order only when it still holds exactly the fields:
	// transforms may have dropped, renamed or added some.
	if keys := jsonKeyOrder(rec.Value); len(keys) == len(rec.Fields) && allIn(keys, rec.Fields) {
		return keys
	}
	out := make([]string, 0, len(rec.Fields))
	for k := range rec.Fields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func allIn(keys []string, fields map[string]any) bool {
	for _, k := range keys {
		if _, ok := fields[k]; !ok {
			return false
		}
	}
	return true
}

func jsonKeyOrder(value []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(value))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, ok := t.(string)
		if !ok {
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// shapeOf types a column from one value.
func shapeOf(v any) newColumn {
	switch x := v.(type) {
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return newColumn{kind: kindInt, bits: 64}
		}
		return newColumn{kind: kindFloat, bits: 64}
	case int, int32, int64:
		return newColumn{kind: kindInt, bits: 64}
	case float32, float64:
		return newColumn{kind: kindFloat, bits: 64}
	case *big.Rat:
		return newColumn{kind: kindDecimal}
	case bool:
		return newColumn{kind: kindBool}
	case []byte:
		return newColumn{kind: kindBytes}
	case time.Time:
		return newColumn{kind: kindTimestampTZ}
	case time.Duration:
		return newColumn{kind: kindTime}
	case map[string]any, []any:
		return newColumn{kind: kindJSON}
	default:
		return newColumn{kind: kindText}
	}
}

// shapeOfField types a column from a schema field.
func shapeOfField(f connector.Field) newColumn {
	switch f.Type {
	case connector.TypeBytes:
		return newColumn{kind: kindBytes}
	case connector.TypeBool:
		return newColumn{kind: kindBool}
	case connector.TypeInt:
		return newColumn{kind: kindInt, bits: 64}
	case connector.TypeFloat:
		return newColumn{kind: kindFloat, bits: 64}
	case connector.TypeDecimal:
		return newColumn{kind: kindDecimal, precision: f.Precision, scale: f.Scale}
	case connector.TypeDate:
		return newColumn{kind: kindDate}
	case connector.TypeTime:
		return newColumn{kind: kindTime}
	case connector.TypeTimestamp:
		return newColumn{kind: kindTimestampTZ}
	case connector.TypeLocalTimestamp:
		return newColumn{kind: kindTimestamp}
	case connector.TypeUUID:
		return newColumn{kind: kindUUID}
	case connector.TypeRecord, connector.TypeArray, connector.TypeMap, connector.TypeJSON:
		return newColumn{kind: kindJSON}
	default:
		return newColumn{kind: kindText}
	}
}
