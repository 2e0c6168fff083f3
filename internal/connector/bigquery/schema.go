package bigquery

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	bq "cloud.google.com/go/bigquery"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Every column Sluice creates is NULLABLE (or REPEATED): a later version of
// an Avro schema may drop a field (with a default) and old and new rows
// must both land, which a REQUIRED column would refuse.

// columnsFromSchema maps a codec's portable schema to table columns:
// records to RECORD, arrays to REPEATED, maps to REPEATED RECORD
// {key, value}, logical types to DATE, TIME, TIMESTAMP, DATETIME,
// NUMERIC/BIGNUMERIC, and what BigQuery cannot nest (arrays of arrays,
// unions of several types) to JSON.
func columnsFromSchema(s *connector.Schema) bq.Schema {
	out := make(bq.Schema, 0, len(s.Fields))
	for _, f := range s.Fields {
		out = append(out, columnFromField(columnName(f.Name), f))
	}
	return out
}

func columnFromField(name string, f connector.Field) *bq.FieldSchema {
	col := &bq.FieldSchema{Name: name, Description: f.Doc}
	switch f.Type {
	case connector.TypeArray:
		if f.Items == nil || f.Items.Type == connector.TypeArray || f.Items.Type == connector.TypeMap {
			col.Type = bq.JSONFieldType // BigQuery has no array of arrays
			return col
		}
		item := columnFromField(name, *f.Items)
		item.Description = f.Doc
		item.Repeated = true
		return item
	case connector.TypeMap:
		col.Repeated, col.Type = true, bq.RecordFieldType
		value := &bq.FieldSchema{Name: "value", Type: bq.JSONFieldType}
		if f.Items != nil && f.Items.Type != connector.TypeArray && f.Items.Type != connector.TypeMap {
			value = columnFromField("value", *f.Items)
		}
		col.Schema = bq.Schema{{Name: "key", Type: bq.StringFieldType}, value}
		return col
	case connector.TypeRecord:
		if len(f.Fields) == 0 {
			col.Type = bq.JSONFieldType // a RECORD needs at least one field
			return col
		}
		col.Type = bq.RecordFieldType
		for _, sub := range f.Fields {
			col.Schema = append(col.Schema, columnFromField(columnName(sub.Name), sub))
		}
		return col
	}
	col.Type = scalarType(f)
	return col
}

func scalarType(f connector.Field) bq.FieldType {
	switch f.Type {
	case connector.TypeString, connector.TypeUUID:
		return bq.StringFieldType
	case connector.TypeBytes:
		return bq.BytesFieldType
	case connector.TypeBool:
		return bq.BooleanFieldType
	case connector.TypeInt:
		return bq.IntegerFieldType
	case connector.TypeFloat:
		return bq.FloatFieldType
	case connector.TypeDecimal:
		p, s := f.Precision, f.Scale
		if p == 0 {
			p = 38
		}
		switch {
		case s <= 9 && p-s <= 29:
			return bq.NumericFieldType
		case s <= 38 && p-s <= 38:
			return bq.BigNumericFieldType
		}
		return bq.StringFieldType // exact decimal text beats a rounded number
	case connector.TypeDate:
		return bq.DateFieldType
	case connector.TypeTime:
		return bq.TimeFieldType
	case connector.TypeTimestamp:
		return bq.TimestampFieldType
	case connector.TypeLocalTimestamp:
		return bq.DateTimeFieldType
	}
	return bq.JSONFieldType
}

// inferColumns derives columns from a decoded value without a schema
// (JSON). Keys whose value says nothing about its type (null, an empty
// object or array) are left out until a record shows one.
func inferColumns(fields map[string]any) bq.Schema {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable column order; JSON objects have none
	out := make(bq.Schema, 0, len(fields))
	for _, k := range keys {
		if col := inferColumn(columnName(k), fields[k]); col != nil {
			out = append(out, col)
		}
	}
	return out
}

func inferColumn(name string, v any) *bq.FieldSchema {
	col := &bq.FieldSchema{Name: name}
	switch x := v.(type) {
	case nil:
		return nil
	case json.Number:
		col.Type = bq.FloatFieldType
		if _, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			col.Type = bq.IntegerFieldType
		}
	case string:
		col.Type = bq.StringFieldType
	case bool:
		col.Type = bq.BooleanFieldType
	case int, int32, int64:
		col.Type = bq.IntegerFieldType
	case float32, float64:
		col.Type = bq.FloatFieldType
	case []byte:
		col.Type = bq.BytesFieldType
	case time.Time:
		col.Type = bq.TimestampFieldType
	case time.Duration:
		col.Type = bq.TimeFieldType
	case *big.Rat:
		col.Type = bq.BigNumericFieldType
	case map[string]any:
		sub := inferColumns(x)
		if len(sub) == 0 {
			return nil
		}
		col.Type, col.Schema = bq.RecordFieldType, sub
	case []any:
		var item *bq.FieldSchema
		for _, e := range x {
			if _, nested := e.([]any); nested {
				col.Type = bq.JSONFieldType // no arrays of arrays in BigQuery
				return col
			}
			c := inferColumn(name, e)
			switch {
			case c == nil:
			case item == nil:
				item = c
			case item.Type == bq.RecordFieldType && c.Type == bq.RecordFieldType:
				item.Schema, _, _ = mergeSchema(item.Schema, c.Schema, "")
			}
		}
		if item == nil {
			return nil
		}
		item.Repeated = true
		return item
	default:
		col.Type = bq.JSONFieldType
	}
	return col
}

// metadataColumns are the optional columns, by their metadata name.
var metadataColumns = map[string]*bq.FieldSchema{
	"topic":     {Name: "_sluice_topic", Type: bq.StringFieldType},
	"partition": {Name: "_sluice_partition", Type: bq.IntegerFieldType},
	"offset":    {Name: "_sluice_offset", Type: bq.IntegerFieldType},
	"timestamp": {Name: "_sluice_timestamp", Type: bq.TimestampFieldType},
	"key":       {Name: "_sluice_key", Type: bq.StringFieldType},
}

// mergeSchema returns table with the columns of want that it lacks added
// (as NULLABLE, or REPEATED), also inside RECORD columns, and whether
// anything was added. Columns are matched case-insensitively, as BigQuery
// does. conflicts names the columns whose type cannot take want's values.
// table is never modified; the result shares unchanged columns with it.
func mergeSchema(table, want bq.Schema, path string) (out bq.Schema, changed bool, conflicts []string) {
	out = table
	for _, w := range want {
		i := findColumn(out, w.Name)
		if i < 0 {
			if !changed {
				out = append(bq.Schema(nil), table...)
				changed = true
			}
			out = append(out, nullable(w))
			continue
		}
		have := out[i]
		if c := conflict(w, have, path); c != "" {
			conflicts = append(conflicts, c)
			continue
		}
		if have.Type != bq.RecordFieldType || w.Type != bq.RecordFieldType {
			continue
		}
		sub, subChanged, subConflicts := mergeSchema(have.Schema, w.Schema, path+have.Name+".")
		conflicts = append(conflicts, subConflicts...)
		if subChanged {
			if !changed {
				out = append(bq.Schema(nil), table...)
				changed = true
			}
			c := *have
			c.Schema = sub
			out[i] = &c
		}
	}
	return out, changed, conflicts
}

func findColumn(s bq.Schema, name string) int {
	for i, c := range s {
		if c.Name == name {
			return i
		}
	}
	for i, c := range s {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// nullable is a deep copy of c with every level made optional.
func nullable(c *bq.FieldSchema) *bq.FieldSchema {
	out := *c
	out.Required = false
	out.Schema = nil
	for _, s := range c.Schema {
		out.Schema = append(out.Schema, nullable(s))
	}
	return &out
}

// widens lists, per column type, the value types it takes beside its own.
var widens = map[bq.FieldType][]bq.FieldType{
	bq.FloatFieldType:      {bq.IntegerFieldType},
	bq.NumericFieldType:    {bq.IntegerFieldType},
	bq.BigNumericFieldType: {bq.IntegerFieldType, bq.NumericFieldType},
	bq.BytesFieldType:      {bq.StringFieldType},
	bq.StringFieldType:     {bq.IntegerFieldType, bq.FloatFieldType, bq.BooleanFieldType, bq.NumericFieldType, bq.BigNumericFieldType},
}

// conflict says why a column of type have cannot take the values of w,
// or "" when it can.
func conflict(w, have *bq.FieldSchema, path string) string {
	if have.Type == bq.JSONFieldType && !have.Repeated {
		return "" // any value can be written as JSON
	}
	if w.Repeated != have.Repeated {
		return fmt.Sprintf("field %s%s: the record has %s, the column is %s", path, have.Name, shape(w), shape(have))
	}
	if w.Type == have.Type {
		return ""
	}
	for _, t := range widens[have.Type] {
		if t == w.Type {
			return ""
		}
	}
	return fmt.Sprintf("field %s%s: the record has %s, the column is %s", path, have.Name, shape(w), shape(have))
}

func shape(c *bq.FieldSchema) string {
	if c.Repeated {
		return "REPEATED " + string(c.Type)
	}
	return string(c.Type)
}

// schemaString is a short description of columns for logs.
func schemaString(s bq.Schema) string {
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = c.Name + " " + shape(c)
	}
	return strings.Join(parts, ", ")
}
