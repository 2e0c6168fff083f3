package codec

import (
	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/connector"
)

// wrappedField is the field name a value that is not an Avro record (a
// bare string, long, array, ...) is decoded under, so that Fields is
// always a map.
const wrappedField = "value"

// portableSchema converts an Avro schema to the portable connector.Schema.
//
// Type mapping: boolean -> bool; int, long -> int; float, double -> float;
// string, enum -> string; bytes, fixed -> bytes; decimal -> decimal (with
// Precision, Scale); date -> date; time-millis/micros -> time;
// timestamp-millis/micros -> timestamp; local-timestamp-millis/micros ->
// local_timestamp; uuid -> uuid; record -> record; array -> array; map ->
// map. A union of null and one type is that type with Nullable set; a
// union of several non-null types is json (Nullable when it has null). A
// recursive reference to a record being converted is json: portable
// schemas are finite.
func portableSchema(s avro.Schema, id int) *connector.Schema {
	s = deref(s)
	out := &connector.Schema{ID: id}
	if rec, ok := s.(*avro.RecordSchema); ok {
		out.Name = rec.FullName()
		out.Fields = recordFields(rec, map[string]bool{})
		return out
	}
	out.Name = typeName(s)
	out.Fields = []connector.Field{portableField(wrappedField, "", s, map[string]bool{})}
	return out
}

func recordFields(rec *avro.RecordSchema, seen map[string]bool) []connector.Field {
	seen[rec.FullName()] = true
	defer delete(seen, rec.FullName())
	fields := make([]connector.Field, 0, len(rec.Fields()))
	for _, f := range rec.Fields() {
		fields = append(fields, portableField(f.Name(), f.Doc(), f.Type(), seen))
	}
	return fields
}

func portableField(name, doc string, s avro.Schema, seen map[string]bool) connector.Field {
	s = deref(s)
	f := connector.Field{Name: name, Doc: doc}
	if u, ok := s.(*avro.UnionSchema); ok {
		var others []avro.Schema
		for _, t := range u.Types() {
			if t.Type() == avro.Null {
				f.Nullable = true
			} else {
				others = append(others, t)
			}
		}
		if len(others) != 1 {
			f.Type = connector.TypeJSON
			return f
		}
		s = deref(others[0])
	}
	switch s.Type() {
	case avro.Null:
		f.Type, f.Nullable = connector.TypeJSON, true
	case avro.Boolean:
		f.Type = connector.TypeBool
	case avro.Int, avro.Long:
		f.Type = connector.TypeInt
		switch logicalType(s) {
		case avro.Date:
			f.Type = connector.TypeDate
		case avro.TimeMillis, avro.TimeMicros:
			f.Type = connector.TypeTime
		case avro.TimestampMillis, avro.TimestampMicros:
			f.Type = connector.TypeTimestamp
		case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			f.Type = connector.TypeLocalTimestamp
		}
	case avro.Float, avro.Double:
		f.Type = connector.TypeFloat
	case avro.String:
		f.Type = connector.TypeString
		if logicalType(s) == avro.UUID {
			f.Type = connector.TypeUUID
		}
	case avro.Enum:
		f.Type = connector.TypeString
	case avro.Bytes, avro.Fixed:
		f.Type = connector.TypeBytes
		if dec, ok := logicalOf(s).(*avro.DecimalLogicalSchema); ok {
			f.Type, f.Precision, f.Scale = connector.TypeDecimal, dec.Precision(), dec.Scale()
		}
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		if seen[rec.FullName()] {
			f.Type = connector.TypeJSON
			return f
		}
		f.Type = connector.TypeRecord
		f.Fields = recordFields(rec, seen)
	case avro.Array:
		f.Type = connector.TypeArray
		items := portableField("", "", s.(*avro.ArraySchema).Items(), seen)
		f.Items = &items
	case avro.Map:
		f.Type = connector.TypeMap
		values := portableField("", "", s.(*avro.MapSchema).Values(), seen)
		f.Items = &values
	default:
		f.Type = connector.TypeJSON
	}
	return f
}
