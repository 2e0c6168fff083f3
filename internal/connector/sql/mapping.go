package sql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

type sourceKind int

const (
	srcNone  sourceKind = iota // not written
	srcField                   // a field of the decoded value
	srcMeta                    // _topic, _partition, _offset, _timestamp, _key
	srcBatch                   // the staging batch id (_sluice_batch)
)

type source struct {
	kind sourceKind
	meta string
	path []string // srcField with an explicit mapping; nil = match by name
}

// mapper turns records into rows of one table. It is built once the table
// is known and is safe for concurrent use.
type mapper struct {
	t        *table
	explicit bool
	visitor  connector.FieldVisitor // values arrive undecoded (gatherFields); nil: decoded
	evolve   bool                   // add_columns: report fields without a column
	ignored  map[string]bool        // fields add_columns will not add; read-only
	src      []source               // per table column
	adapt    []func(any) any        // per table column: the dialect's final form; nil = as converted
	log      *slog.Logger

	mu     sync.Mutex
	warned map[string]bool // fields without a column, warned once each
}

func isMetadata(name string) bool { return slices.Contains(config.SQLMetadataColumns, name) }

// newMapper checks the configured mapping against t: an explicitly mapped
// or listed metadata column that t lacks is an error naming it.
func newMapper(t *table, cfg *config.SQLSink, needBatch bool, adapt func(*column) func(any) any, log *slog.Logger) (*mapper, error) {
	m := &mapper{t: t, explicit: cfg.Columns != nil, src: make([]source, len(t.cols)), adapt: make([]func(any) any, len(t.cols)), log: log, warned: map[string]bool{}}
	for i := range t.cols {
		m.adapt[i] = adapt(&t.cols[i])
	}
	set := func(col string, s source, why string) error {
		i := t.lookup(col)
		if i < 0 {
			return missingColumnError(t, col, why)
		}
		if t.cols[i].generated {
			return fmt.Errorf("column %q of table %s is generated and cannot be written (%s)", col, t.name, why)
		}
		m.src[i] = s
		return nil
	}
	if m.explicit {
		keys := make([]string, 0, len(cfg.Columns))
		for k := range cfg.Columns {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, col := range keys {
			from := strings.TrimSpace(cfg.Columns[col])
			s := source{kind: srcField, path: strings.Split(from, ".")}
			if isMetadata(from) {
				s = source{kind: srcMeta, meta: from}
			}
			if err := set(col, s, "named in columns"); err != nil {
				return nil, err
			}
		}
	} else {
		for i, c := range t.cols {
			if c.generated {
				continue
			}
			switch {
			case isMetadata(c.name) && cfg.Metadata == nil:
				m.src[i] = source{kind: srcMeta, meta: c.name}
			case c.name != colBatch:
				m.src[i] = source{kind: srcField}
			}
		}
	}
	for _, meta := range cfg.Metadata {
		if err := set(meta, source{kind: srcMeta, meta: meta}, "listed in metadata"); err != nil {
			return nil, err
		}
	}
	if i := t.lookup(colBatch); i >= 0 {
		m.src[i] = source{kind: srcBatch}
	} else if needBatch {
		return nil, missingColumnError(t, colBatch, "merge mode continuous hands the merge the highest batch id to take: add `_sluice_batch bigint NOT NULL DEFAULT 0`")
	}
	return m, nil
}

// plan is the columns one batch writes, in table order.
type plan struct {
	cols     []int    // table column indexes
	names    []string // their names
	batchPos int      // position of _sluice_batch in cols, -1 when absent
}

// row is one record converted for a plan.
type row struct {
	rec  *connector.Record
	idx  int // position in the batch
	vals []any
}

// rows converts batch. A record whose value does not fit a column is
// returned in bad with a message naming the table, the column and the
// offset; the others are returned in rows, in batch order.
//
// Each record gets a row of the table's width in one backing array: its
// fields are placed by table column first (gather), then converted and
// compacted in place to the plan's columns (fill), so no per-row map or
// slice is built.
//
// A transient error (a schema registry that is down, when the mapper
// visits undecoded values) fails the whole call.
func (m *mapper) rows(ctx context.Context, batch []*connector.Record) (plan, []row, []*connector.RecordError, map[string]sample, error) {
	width := len(m.t.cols)
	backing := make([]any, len(batch)*width)
	var sent []bool // table columns some record has a field for
	var failed []bool
	var bad []*connector.RecordError
	nf := &newFields{m: m}
	switch {
	case m.explicit:
	case m.visitor != nil:
		var err error
		if sent, failed, bad, err = m.gatherFields(ctx, batch, backing, nf); err != nil {
			return plan{}, nil, nil, nil, err
		}
	default:
		sent = m.gather(batch, backing, nf)
	}
	p := m.plan(sent)
	rows := make([]row, 0, len(batch))
	var topic boxedString
	for idx, rec := range batch {
		if failed != nil && failed[idx] {
			continue
		}
		wide := backing[idx*width : (idx+1)*width : (idx+1)*width]
		vals := wide[:len(p.cols):len(p.cols)]
		if err := m.fill(p, rec, wide, vals, &topic); err != nil {
			bad = append(bad, err)
			continue
		}
		rows = append(rows, row{rec: rec, idx: idx, vals: vals})
	}
	return p, rows, bad, nf.found, nil
}

// sample is a value of a field the table has no column for, and its
// record (whose schema, when it has one, types the column).
type sample struct {
	rec    *connector.Record
	v      any
	schema *connector.Schema // the record's, when its format has one
	// recs are the records of the batch with a value for the field, in
	// batch order: add_columns adds a record's new columns together, or
	// rejects the record when they would pass max_columns.
	recs []*connector.Record
}

// newFields collects, with add_columns, the first non-null value of each
// field that has no column.
type newFields struct {
	m     *mapper
	found map[string]sample
}

// typedBy records the schema of rec's samples, known once it is visited.
func (nf *newFields) typedBy(rec *connector.Record, schema *connector.Schema) {
	if schema == nil {
		return
	}
	for k, s := range nf.found {
		if s.rec == rec {
			s.schema = schema
			nf.found[k] = s
		}
	}
}

func (nf *newFields) note(k string, v any, rec *connector.Record, schema *connector.Schema) {
	if !nf.m.evolve || v == nil || nf.m.ignored[k] {
		return
	}
	if s, ok := nf.found[k]; ok {
		if s.recs[len(s.recs)-1] != rec {
			s.recs = append(s.recs, rec)
			nf.found[k] = s
		}
		return
	}
	if nf.found == nil {
		nf.found = map[string]sample{}
	}
	nf.found[k] = sample{rec: rec, v: v, schema: schema, recs: []*connector.Record{rec}}
}

// gather puts each record's field values in its row of backing at their
// table columns, and returns which columns some record has a field for.
// It warns once about each field without a column.
//
// Records of a batch mostly share one set of field names, so it looks the
// names seen so far up in each record, and walks a record's map only when
// that does not account for all its fields.
func (m *mapper) gather(batch []*connector.Record, backing []any, nf *newFields) []bool {
	width := len(m.t.cols)
	sent := make([]bool, width)
	var names []string // every field name seen, in order of first sight
	var cols []int     // names[i] -> table column, -1 = none
	seen := map[string]int{}
	add := func(k string) int {
		i := m.fieldColumn(k, sent)
		seen[k] = len(names)
		names, cols = append(names, k), append(cols, i)
		return len(names) - 1
	}
	for idx, rec := range batch {
		if len(rec.Fields) == 0 {
			continue
		}
		wide := backing[idx*width : (idx+1)*width]
		if len(names) <= 2*len(rec.Fields) {
			found := 0
			for i, k := range names {
				if v, ok := rec.Fields[k]; ok {
					found++
					if c := cols[i]; c >= 0 {
						wide[c] = v
					} else {
						nf.note(k, v, rec, rec.Schema)
					}
				}
			}
			if found == len(rec.Fields) {
				continue
			}
		}
		for k, v := range rec.Fields {
			i, ok := seen[k]
			if !ok {
				i = add(k)
			}
			if c := cols[i]; c >= 0 {
				wide[c] = v
			} else {
				nf.note(k, v, rec, rec.Schema)
			}
		}
	}
	return sent
}

// fieldColumn is the table column that takes field k (-1: none, warned
// once), marked in sent.
func (m *mapper) fieldColumn(k string, sent []bool) int {
	i := m.t.lookup(k)
	if i >= 0 && m.src[i].kind != srcField {
		i = -1
	}
	if i < 0 {
		if !m.evolve { // with add_columns, addColumns says why it does not add one
			m.warnUnknown(k)
		}
	} else {
		sent[i] = true
	}
	return i
}

// gatherFields is gather for values that arrive undecoded (JSON, Avro):
// each field goes straight from the decoder into its record's row of
// backing, with no map per record. A value that does not decode is
// returned in bad (with the decoder's error) and marked in failed; any
// other decoder error (a registry that is down) is returned as err.
func (m *mapper) gatherFields(ctx context.Context, batch []*connector.Record, backing []any, nf *newFields) (sent, failed []bool, bad []*connector.RecordError, err error) {
	width := len(m.t.cols)
	sent = make([]bool, width)
	// Records of a batch mostly list the same fields in the same order:
	// byPos remembers the column of the key last seen at each position, so
	// the common case is a string comparison, not a lookup.
	type slot struct {
		key string
		col int // -1: no column
	}
	var byPos []slot
	var wide []any
	var rec *connector.Record
	pos := 0
	visit := func(k string, v any) {
		var c int
		if pos < len(byPos) && byPos[pos].key == k {
			c = byPos[pos].col
		} else {
			c = m.fieldColumn(k, sent)
			if pos < len(byPos) {
				byPos[pos] = slot{k, c}
			} else if pos < 4*width {
				byPos = append(byPos, slot{k, c})
			}
		}
		pos++
		if c >= 0 {
			wide[c] = v // the last of a repeated key wins, as in a map
		} else {
			nf.note(k, v, rec, nil)
		}
	}
	for idx := range batch {
		rec = batch[idx]
		wide, pos = backing[idx*width:(idx+1)*width], 0
		schema, err := m.visitor.VisitFields(ctx, rec, visit)
		if err == nil {
			nf.typedBy(rec, schema)
			continue
		}
		var re *connector.RecordError
		if !errors.As(err, &re) {
			return nil, nil, nil, err
		}
		if failed == nil {
			failed = make([]bool, len(batch))
		}
		failed[idx] = true
		bad = append(bad, re)
	}
	return sent, failed, bad, nil
}

// plan picks the columns: every mapped one with an explicit mapping;
// otherwise metadata columns plus the columns some record of the batch has
// a field for (sent), so columns nobody sends keep their database default.
func (m *mapper) plan(sent []bool) plan {
	p := plan{batchPos: -1}
	for i, s := range m.src {
		on := s.kind == srcMeta || s.kind == srcBatch || (m.explicit && s.kind == srcField) || (sent != nil && sent[i])
		if !on {
			continue
		}
		if s.kind == srcBatch {
			p.batchPos = len(p.cols)
		}
		p.cols = append(p.cols, i)
		p.names = append(p.names, m.t.cols[i].name)
	}
	return p
}

// boxedString keeps the last topic boxed in an interface, so that rows of
// one topic share it instead of allocating one each.
type boxedString struct {
	s   string
	any any
}

// fill converts the values of rec into vals, which aliases the start of
// wide (the record's values by table column): plan positions never pass
// their table column, so each value is read before its slot is reused.
func (m *mapper) fill(p plan, rec *connector.Record, wide, vals []any, topic *boxedString) *connector.RecordError {
	for j, ci := range p.cols {
		s := m.src[ci]
		var raw any
		switch s.kind {
		case srcMeta:
			if s.meta == "_topic" {
				if topic.any == nil || topic.s != rec.Topic {
					topic.s, topic.any = rec.Topic, rec.Topic
				}
				raw = topic.any
			} else {
				raw = metadataValue(rec, s.meta)
			}
		case srcField:
			if m.explicit {
				raw = fieldValue(rec.Fields, s.path)
			} else {
				raw = wide[ci]
			}
		case srcBatch:
			vals[j] = nil // set at insert time
			continue
		}
		c := &m.t.cols[ci]
		v, err := convert(c, raw)
		if err == nil && v == nil && !c.nullable {
			err = fmt.Errorf("no value for NOT NULL column (%s)", c.describeType())
		}
		if err != nil {
			return &connector.RecordError{Record: rec, Reason: "column", Err: fmt.Errorf("table %s, column %s, offset %d: %w", m.t.name, c.name, rec.Offset, err)}
		}
		if v != nil && m.adapt[ci] != nil {
			v = m.adapt[ci](v)
		}
		vals[j] = v
	}
	return nil
}

func metadataValue(rec *connector.Record, name string) any {
	switch name {
	case "_topic":
		return rec.Topic
	case "_partition":
		return int64(rec.Partition)
	case "_offset":
		return rec.Offset
	case "_timestamp":
		if rec.Timestamp.IsZero() {
			return nil
		}
		return rec.Timestamp
	case "_key":
		if rec.Key == nil {
			return nil
		}
		return rec.Key
	}
	return nil
}

// fieldValue follows a dotted path into nested records.
func fieldValue(fields map[string]any, path []string) any {
	var cur any = fields
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (m *mapper) warnUnknown(field string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.warned[field] || len(m.warned) > 1000 {
		return
	}
	m.warned[field] = true
	m.log.Warn("field has no column in the table; it is not written", "table", m.t.name.String(), "field", field)
}
