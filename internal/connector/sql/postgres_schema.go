package sql

import (
	"context"
	"fmt"
)

// describe reads the table's columns from information_schema (so only
// the columns the user may see), in declared order.
func (p *postgres) describe(ctx context.Context, t tableName) (*table, error) {
	schemaExpr := "current_schema()"
	args := []any{t.name}
	if t.schema != "" {
		schemaExpr = "$2"
		args = append(args, t.schema)
	}
	rows, err := p.query(ctx, `SELECT column_name, udt_name, data_type, character_maximum_length, numeric_precision, numeric_scale,
	       is_nullable = 'YES', (is_identity = 'YES' AND identity_generation = 'ALWAYS') OR is_generated = 'ALWAYS'
	  FROM information_schema.columns
	 WHERE table_schema = `+schemaExpr+` AND table_name = $1
	 ORDER BY ordinal_position`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		var udt, dataType string
		var length, precision, scale *int32
		if err := rows.Scan(&c.name, &udt, &dataType, &length, &precision, &scale, &c.nullable, &c.generated); err != nil {
			return nil, err
		}
		c.dbType = dataType
		pgKind(&c, udt, length, precision, scale)
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

func pgKind(c *column, udt string, length, precision, scale *int32) {
	n := func(p *int32) int {
		if p == nil {
			return 0
		}
		return int(*p)
	}
	switch udt {
	case "int2":
		c.kind, c.bits = kindInt, 16
	case "int4":
		c.kind, c.bits = kindInt, 32
	case "int8":
		c.kind, c.bits = kindInt, 64
	case "float4":
		c.kind, c.bits = kindFloat, 32
	case "float8":
		c.kind, c.bits = kindFloat, 64
	case "numeric":
		c.kind, c.precision, c.scale = kindDecimal, n(precision), n(scale)
		if c.precision > 0 {
			c.dbType = fmt.Sprintf("numeric(%d,%d)", c.precision, c.scale)
		}
	case "bool":
		c.kind = kindBool
	case "bytea":
		c.kind = kindBytes
	case "timestamp":
		c.kind = kindTimestamp
	case "timestamptz":
		c.kind = kindTimestampTZ
	case "date":
		c.kind = kindDate
	case "time":
		c.kind = kindTime
	case "json", "jsonb":
		c.kind = kindJSON
	case "uuid":
		c.kind = kindUUID
	default: // text, varchar, bpchar, and types written from their text form
		c.kind, c.length = kindText, n(length)
		if c.length > 0 {
			c.dbType = fmt.Sprintf("%s(%d)", c.dbType, c.length)
		}
	}
}

func pgColumnType(c newColumn) string {
	switch c.kind {
	case kindInt:
		if c.bits > 0 && c.bits <= 32 {
			return "integer"
		}
		return "bigint"
	case kindFloat:
		return "double precision"
	case kindDecimal:
		if c.precision > 0 {
			return fmt.Sprintf("numeric(%d,%d)", c.precision, c.scale)
		}
		return "numeric"
	case kindBool:
		return "boolean"
	case kindBytes:
		return "bytea"
	case kindTimestamp:
		return "timestamp"
	case kindTimestampTZ:
		return "timestamptz"
	case kindDate:
		return "date"
	case kindTime:
		return "time"
	case kindJSON:
		return "jsonb"
	case kindUUID:
		return "uuid"
	default:
		return "text"
	}
}
