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

// createTable creates t from the shape of rec (create_table: true): one
// nullable column per field, in the record's order, typed from the schema
// when the codec knows one (Avro) and from the value otherwise (JSON: an
// integer becomes bigint, a fraction double precision, an object jsonb);
// then the metadata columns and, with a merge, _sluice_batch.
func createTable(ctx context.Context, db database, t tableName, rec *connector.Record, cfg *config.SQLSink, withBatch bool, log *slog.Logger) error {
	cols := shapeColumns(rec, cfg, withBatch, log)
	if len(cols) == 0 {
		return connector.Permanent(fmt.Errorf("creating table %s: the first record (offset %d) has no fields to make columns of", t, rec.Offset))
	}
	d := db.dialect()
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = d.q.ident(c.name) + " " + d.columnType(c)
		if c.notNull {
			defs[i] += " NOT NULL DEFAULT 0"
		}
	}
	stmt := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", d.q.table(t), strings.Join(defs, ", "))
	if err := execDDL(ctx, db, stmt); err != nil {
		return fmt.Errorf("creating table %s: %w", t, err)
	}
	log.Info("created table from the first record", "table", t.String(), "columns", len(cols))
	return nil
}

// addColumns adds a nullable column for each new field (add_columns),
// typed as createTable types them, and returns the mapper of the wider
// table. Fields it cannot add (not plain column names, or names a column
// already takes for something else) are warned about once and ignored
// from then on. Another writer or process adding the same column first
// is fine: the table is described again either way.
func (s *Sink) addColumns(ctx context.Context, seen *mapper, fields map[string]sample) (*mapper, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapper != seen {
		return s.mapper, nil // another writer has just done it
	}
	t, err := s.db.describe(ctx, s.table)
	if err != nil || t == nil {
		return nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(err, errors.New("table not found")))
	}
	ignored := maps.Clone(s.ignored)
	if ignored == nil {
		ignored = map[string]bool{}
	}
	d := s.db.dialect()
	var added []string
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if t.lookup(name) >= 0 {
			continue
		}
		if !dataName.MatchString(name) {
			s.log.Warn("add_columns: field name is not a plain column name; no column made for it", "table", s.table.String(), "field", name)
			ignored[name] = true
			continue
		}
		smp := fields[name]
		c := shapeOf(smp.v)
		if smp.schema != nil {
			for _, f := range smp.schema.Fields {
				if f.Name == name {
					c = shapeOfField(f)
				}
			}
		}
		c.name = name
		stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", d.q.table(s.table), d.q.ident(c.name), d.columnType(c))
		if err := execDDL(ctx, s.db, stmt); err != nil {
			now, derr := s.db.describe(ctx, s.table)
			if derr != nil || now == nil || now.lookup(name) < 0 {
				return nil, wrap(s.db, fmt.Sprintf("adding column %s to %s", name, s.table), err)
			}
			continue // added by someone else meanwhile
		}
		added = append(added, name+" "+d.columnType(c))
	}
	if len(added) > 0 {
		s.log.Info("added columns for new fields", "table", s.table.String(), "columns", strings.Join(added, ", "))
	}
	if t, err = s.db.describe(ctx, s.table); err != nil || t == nil {
		return nil, wrap(s.db, "describing table "+s.table.String(), errors.Join(err, errors.New("table not found")))
	}
	s.ignored = ignored
	if err := s.useTable(t); err != nil {
		return nil, err
	}
	m := s.mapper
	for name := range fields {
		if i := m.t.lookup(name); i < 0 || m.src[i].kind != srcField {
			if !ignored[name] {
				s.log.Warn("add_columns: a column of that name is not written from fields; the field is left out", "table", s.table.String(), "field", name)
			}
			ignored[name] = true // m.ignored is this map; m is not shared before s.mu is released
		}
	}
	return m, nil
}

// execDDL runs one statement in its own transaction.
func execDDL(ctx context.Context, db database, stmt string) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx))
	if err := tx.exec(ctx, stmt); err != nil {
		return err
	}
	return tx.commit(ctx)
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
	if keys := jsonKeyOrder(rec.Value); len(keys) == len(rec.Fields) {
		return keys
	}
	out := make([]string, 0, len(rec.Fields))
	for k := range rec.Fields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
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
