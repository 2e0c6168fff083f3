package sql

import (
	"fmt"
	"strings"
)

// kind is a portable column type: what a value must be converted to before
// it goes into a column. Each dialect maps its own type names to kinds.
type kind int

const (
	kindText    kind = iota // text, varchar(n), char(n)
	kindInt                 // bits, unsigned
	kindFloat               // bits 32 or 64
	kindDecimal             // precision, scale
	kindBool
	kindBytes
	kindTimestamp   // no time zone: stored as the UTC wall clock
	kindTimestampTZ // an instant
	kindDate
	kindTime // time of day
	kindJSON
	kindUUID
	kindAny // no declared type (SQLite): the value's natural type
)

var kindNames = [...]string{"text", "integer", "float", "decimal", "boolean", "bytes", "timestamp", "timestamptz", "date", "time", "json", "uuid", "any"}

func (k kind) String() string { return kindNames[k] }

// column is one column of a table as the database describes it.
type column struct {
	name      string
	dbType    string // as the database spells it, for messages
	kind      kind
	bits      int  // kindInt: 8, 16, 24, 32, 64; kindFloat: 32, 64
	unsigned  bool // kindInt
	length    int  // kindText, kindBytes: maximum characters/bytes; 0 = unbounded
	precision int  // kindDecimal: total digits; 0 = unbounded
	scale     int  // kindDecimal: digits after the point
	nullable  bool
	// generated columns (identity ALWAYS, computed) are never written.
	generated bool
}

// table is a table's columns in their declared order.
type table struct {
	name  tableName
	cols  []column
	exact map[string]int // name -> index
	fold  map[string]int // lower-case name -> index, when unambiguous
}

func newTable(name tableName, cols []column) *table {
	t := &table{name: name, cols: cols, exact: map[string]int{}, fold: map[string]int{}}
	seen := map[string]int{}
	for i, c := range cols {
		t.exact[c.name] = i
		seen[strings.ToLower(c.name)]++
	}
	for i, c := range cols {
		if l := strings.ToLower(c.name); seen[l] == 1 {
			t.fold[l] = i
		}
	}
	return t
}

// lookup finds a column by exact name, then case-insensitively (JSON
// fields are often camelCase while PostgreSQL folds unquoted names to
// lower case). It returns -1 when there is none.
func (t *table) lookup(name string) int {
	if i, ok := t.exact[name]; ok {
		return i
	}
	if i, ok := t.fold[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// Well-known columns.
const (
	colBatch = "_sluice_batch" // the staging batch a row belongs to (merge high-water mark)
)

// metadataKind is the column kind create_table gives each metadata column.
var metadataKind = map[string]kind{
	"_topic":     kindText,
	"_partition": kindInt,
	"_offset":    kindInt,
	"_timestamp": kindTimestampTZ,
	"_key":       kindText,
}

// newColumn is a column create_table will create.
type newColumn struct {
	name      string
	kind      kind
	bits      int
	precision int
	scale     int
	notNull   bool
}

// describeType is a column's type for messages: the database's own name.
func (c *column) describeType() string {
	if c.dbType != "" {
		return c.dbType
	}
	return c.kind.String()
}

// missingColumnError names the column and table, and what to do.
func missingColumnError(t *table, col, why string) error {
	return fmt.Errorf("table %s has no column %q (%s); add it or set create_table on a new table", t.name, col, why)
}
