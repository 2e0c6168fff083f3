package sql

import (
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
	src      []source        // per table column
	adapt    []func(any) any // per table column: the dialect's final form; nil = as converted
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
func (m *mapper) rows(batch []*connector.Record) (plan, []row, []*connector.RecordError) {
	p, fieldPos := m.plan(batch)
	rows := make([]row, 0, len(batch))
	var bad []*connector.RecordError
	backing := make([]any, len(batch)*len(p.cols))
	for idx, rec := range batch {
		vals := backing[:len(p.cols):len(p.cols)]
		backing = backing[len(p.cols):]
		if err := m.fill(p, fieldPos, rec, vals); err != nil {
			bad = append(bad, err)
			continue
		}
		rows = append(rows, row{rec: rec, idx: idx, vals: vals})
	}
	return p, rows, bad
}

// plan picks the columns: every mapped one with an explicit mapping;
// otherwise metadata columns plus the columns some record of the batch has
// a field for, so columns nobody sends keep their database default.
func (m *mapper) plan(batch []*connector.Record) (plan, map[string]int) {
	active := make([]bool, len(m.t.cols))
	fieldCol := map[string]int{} // field name -> table column, -1 = none
	for i, s := range m.src {
		if s.kind == srcMeta || s.kind == srcBatch || (m.explicit && s.kind == srcField) {
			active[i] = true
		}
	}
	if !m.explicit {
		for _, rec := range batch {
			for k := range rec.Fields {
				i, seen := fieldCol[k]
				if !seen {
					i = m.t.lookup(k)
					if i >= 0 && m.src[i].kind != srcField {
						i = -1
					}
					fieldCol[k] = i
					if i < 0 {
						m.warnUnknown(k)
					}
				}
				if i >= 0 {
					active[i] = true
				}
			}
		}
	}
	p := plan{batchPos: -1}
	pos := make([]int, len(m.t.cols))
	for i, on := range active {
		if !on {
			continue
		}
		pos[i] = len(p.cols)
		if m.src[i].kind == srcBatch {
			p.batchPos = len(p.cols)
		}
		p.cols = append(p.cols, i)
		p.names = append(p.names, m.t.cols[i].name)
	}
	fieldPos := make(map[string]int, len(fieldCol))
	for k, i := range fieldCol {
		if i >= 0 {
			fieldPos[k] = pos[i]
		}
	}
	return p, fieldPos
}

func (m *mapper) fill(p plan, fieldPos map[string]int, rec *connector.Record, vals []any) *connector.RecordError {
	if !m.explicit {
		for k, v := range rec.Fields {
			if j, ok := fieldPos[k]; ok {
				vals[j] = v
			}
		}
	}
	for j, ci := range p.cols {
		s := m.src[ci]
		switch s.kind {
		case srcMeta:
			vals[j] = metadataValue(rec, s.meta)
		case srcField:
			if m.explicit {
				vals[j] = fieldValue(rec.Fields, s.path)
			}
		case srcBatch:
			continue // set at insert time
		}
		c := &m.t.cols[ci]
		v, err := convert(c, vals[j])
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
