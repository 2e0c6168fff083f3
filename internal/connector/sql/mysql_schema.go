package sql

import (
	"context"
	"fmt"
	"strings"
)

// describe reads the table's columns from information_schema.
func (m *mysqlDB) describe(ctx context.Context, t tableName) (*table, error) {
	var schema any
	if t.schema != "" {
		schema = t.schema
	}
	rows, err := m.query(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE = 'YES', EXTRA
	  FROM information_schema.COLUMNS
	 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
	 ORDER BY ORDINAL_POSITION`, schema, t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		var dataType, colType, extra string
		var length, precision, scale *int64
		if err := rows.Scan(&c.name, &dataType, &colType, &length, &precision, &scale, &c.nullable, &extra); err != nil {
			return nil, err
		}
		c.dbType = colType
		c.generated = strings.Contains(strings.ToUpper(extra), "GENERATED")
		mysqlKind(&c, strings.ToLower(dataType), strings.ToLower(colType), length, precision, scale)
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

func mysqlKind(c *column, dataType, colType string, length, precision, scale *int64) {
	n := func(p *int64) int {
		if p == nil {
			return 0
		}
		return int(*p)
	}
	c.unsigned = strings.Contains(colType, "unsigned")
	switch dataType {
	case "tinyint":
		c.kind, c.bits = kindInt, 8
	case "smallint", "year":
		c.kind, c.bits = kindInt, 16
	case "mediumint":
		c.kind, c.bits = kindInt, 24
	case "int", "integer":
		c.kind, c.bits = kindInt, 32
	case "bigint":
		c.kind, c.bits = kindInt, 64
	case "float":
		c.kind, c.bits = kindFloat, 32
	case "double", "real":
		c.kind, c.bits = kindFloat, 64
	case "decimal", "numeric":
		c.kind, c.precision, c.scale = kindDecimal, n(precision), n(scale)
	case "char", "varchar":
		c.kind, c.length = kindText, n(length)
	case "binary", "varbinary":
		c.kind, c.length = kindBytes, n(length)
	case "tinyblob", "blob", "mediumblob", "longblob":
		c.kind = kindBytes
	case "date":
		c.kind = kindDate
	case "datetime", "timestamp":
		c.kind = kindTimestamp
	case "time":
		c.kind = kindTime
	case "json":
		c.kind = kindJSON
	case "uuid":
		c.kind = kindUUID
	default: // text types, enum, set: the server checks the rest
		c.kind = kindText
	}
}

func mysqlColumnType(c newColumn) string {
	switch c.kind {
	case kindInt:
		if c.bits > 0 && c.bits <= 32 {
			return "INT"
		}
		return "BIGINT"
	case kindFloat:
		return "DOUBLE"
	case kindDecimal:
		if c.precision > 0 {
			return fmt.Sprintf("DECIMAL(%d,%d)", c.precision, c.scale)
		}
		return "DECIMAL(38,9)"
	case kindBool:
		return "BOOLEAN"
	case kindBytes:
		return "LONGBLOB"
	case kindTimestamp, kindTimestampTZ:
		return "DATETIME(6)"
	case kindDate:
		return "DATE"
	case kindTime:
		return "TIME(6)"
	case kindJSON:
		return "JSON"
	case kindUUID:
		return "CHAR(36)"
	default:
		return "LONGTEXT"
	}
}
