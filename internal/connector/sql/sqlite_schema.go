package sql

import (
	"context"
	"regexp"
	"strconv"
	"strings"
)

// describe reads pragma_table_xinfo. SQLite stores any value in any column
// (unless the table is STRICT); the sink still converts to the declared
// type's affinity, so "abc" does not land in an INTEGER column.
func (s sqliteDB) describe(ctx context.Context, t tableName) (*table, error) {
	schema := t.schema
	if schema == "" {
		schema = "main"
	}
	rows, err := s.query(ctx, `SELECT name, type, "notnull", hidden FROM pragma_table_xinfo(?, ?) ORDER BY cid`, t.name, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		var notNull, hidden int
		if err := rows.Scan(&c.name, &c.dbType, &notNull, &hidden); err != nil {
			return nil, err
		}
		if hidden == 1 {
			continue // hidden column of a virtual table
		}
		c.nullable = notNull == 0
		c.generated = hidden >= 2
		sqliteKind(&c, strings.ToUpper(c.dbType))
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, nil
	}
	return newTable(t, cols), nil
}

// sqliteKind follows SQLite's affinity rules (section 3.1 of "Datatypes In
// SQLite"), refined for the usual type names of the NUMERIC affinity.
func sqliteKind(c *column, typ string) {
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(typ, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("INT"):
		c.kind, c.bits = kindInt, 64
	case has("CHAR", "CLOB", "TEXT"):
		c.kind = kindText
	case typ == "":
		c.kind = kindAny
	case has("BLOB"):
		c.kind = kindBytes
	case has("REAL", "FLOA", "DOUB"):
		c.kind, c.bits = kindFloat, 64
	case has("BOOL"):
		c.kind = kindBool
	case has("TIMESTAMP", "DATETIME"):
		c.kind = kindTimestamp
	case has("DATE"):
		c.kind = kindDate
	case has("TIME"):
		c.kind = kindTime
	case has("JSON"):
		c.kind = kindJSON
	case has("UUID"):
		c.kind = kindUUID
	default: // NUMERIC, DECIMAL(p,s): exact text that SQLite turns into a number
		c.kind = kindDecimal
	}
	// SQLite ignores VARCHAR(n) and NUMERIC(p,s); the sink holds rows to
	// them anyway, as PostgreSQL and MySQL would.
	if m := typeArgs.FindStringSubmatch(typ); m != nil {
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		switch c.kind {
		case kindText, kindBytes:
			c.length = a
		case kindDecimal:
			c.precision, c.scale = a, b
		}
	}
}

var typeArgs = regexp.MustCompile(`\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)`)

func sqliteColumnType(c newColumn) string {
	switch c.kind {
	case kindInt:
		return "INTEGER"
	case kindFloat:
		return "REAL"
	case kindDecimal:
		return "NUMERIC"
	case kindBool:
		return "BOOLEAN"
	case kindBytes:
		return "BLOB"
	case kindTimestamp, kindTimestampTZ:
		return "TIMESTAMP"
	case kindDate:
		return "DATE"
	case kindTime:
		return "TIME"
	default: // text, JSON, UUID
		return "TEXT"
	}
}
