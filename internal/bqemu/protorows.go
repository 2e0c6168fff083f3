package bqemu

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// messagePlan maps the fields of one proto message onto the columns of one
// level of a table schema. Building it checks the writer schema against the
// table schema once per (descriptor, schema version), which is where
// BigQuery rejects a whole request (extra fields, incompatible types);
// decoding a row then only checks values.
type messagePlan struct {
	fields  []fieldPlan
	columns []*bq.TableFieldSchema
}

type fieldPlan struct {
	fd   protoreflect.FieldDescriptor
	col  *bq.TableFieldSchema
	conv scalarConv   // for scalar columns
	sub  *messagePlan // for RECORD columns
}

// scalarConv converts one proto value to the canonical string of a column.
type scalarConv func(v protoreflect.Value) (string, error)

// schemaError is a writer schema that does not fit the table: the whole
// request fails with INVALID_ARGUMENT.
type schemaError struct {
	code storagepb.StorageError_StorageErrorCode
	msg  string
}

func (e *schemaError) Error() string { return e.msg }

func buildPlan(md protoreflect.MessageDescriptor, columns []*bq.TableFieldSchema, path string) (*messagePlan, error) {
	p := &messagePlan{columns: columns}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := path + string(fd.Name())
		col := findField(columns, string(fd.Name()))
		if col == nil {
			return nil, &schemaError{storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS,
				fmt.Sprintf("Input schema has more fields than BigQuery schema, extra fields: '%s'", name)}
		}
		if fd.IsMap() || fd.IsList() != (col.Mode == modeRepeated) {
			return nil, &schemaError{msg: fmt.Sprintf("Field %s: the proto field is %s but the BigQuery column is %s",
				name, cardinality(fd), col.Mode)}
		}
		fp := fieldPlan{fd: fd, col: col}
		if col.Type == typeRecord {
			if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
				return nil, incompatible(name, fd, col)
			}
			sub, err := buildPlan(fd.Message(), col.Fields, name+".")
			if err != nil {
				return nil, err
			}
			fp.sub = sub
		} else {
			conv := converter(fd, col.Type)
			if conv == nil {
				return nil, incompatible(name, fd, col)
			}
			fp.conv = conv
		}
		p.fields = append(p.fields, fp)
	}
	return p, nil
}

func cardinality(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "a map"
	}
	if fd.IsList() {
		return "repeated"
	}
	return "not repeated"
}

func incompatible(name string, fd protoreflect.FieldDescriptor, col *bq.TableFieldSchema) error {
	kind := fd.Kind().String()
	if fd.Message() != nil {
		kind = string(fd.Message().FullName())
	}
	return &schemaError{msg: fmt.Sprintf("The proto field mismatched with BigQuery field at %s, the proto field type %s, BigQuery field type %s",
		name, kind, col.Type)}
}

// converter picks the conversion of a proto field into a column type, or
// nil where BigQuery does not accept that pairing.
func converter(fd protoreflect.FieldDescriptor, typ string) scalarConv {
	if md := fd.Message(); md != nil {
		return messageConverter(md, typ)
	}
	return kindConverter(fd, typ)
}

// messageConverter handles google.protobuf wrappers and Timestamp.
func messageConverter(md protoreflect.MessageDescriptor, typ string) scalarConv {
	if md.FullName() == "google.protobuf.Timestamp" && typ == typeTimestamp {
		secs, nanos := md.Fields().ByName("seconds"), md.Fields().ByName("nanos")
		return func(v protoreflect.Value) (string, error) {
			m := v.Message()
			return canonicalTimestampMicros(m.Get(secs).Int()*1e6 + m.Get(nanos).Int()/1e3)
		}
	}
	if md.ParentFile().Path() != "google/protobuf/wrappers.proto" {
		return nil
	}
	inner := md.Fields().ByName("value")
	conv := kindConverter(inner, typ)
	if conv == nil {
		return nil
	}
	return func(v protoreflect.Value) (string, error) { return conv(v.Message().Get(inner)) }
}

func kindConverter(fd protoreflect.FieldDescriptor, typ string) scalarConv {
	k := fd.Kind()
	signed := k == protoreflect.Int32Kind || k == protoreflect.Sint32Kind || k == protoreflect.Sfixed32Kind ||
		k == protoreflect.Int64Kind || k == protoreflect.Sint64Kind || k == protoreflect.Sfixed64Kind
	unsigned := k == protoreflect.Uint32Kind || k == protoreflect.Fixed32Kind ||
		k == protoreflect.Uint64Kind || k == protoreflect.Fixed64Kind
	integer := func(v protoreflect.Value) (int64, error) {
		if unsigned {
			u := v.Uint()
			if u > math.MaxInt64 {
				return 0, fmt.Errorf("value %d overflows INT64", u)
			}
			return int64(u), nil
		}
		return v.Int(), nil
	}
	isFloat := k == protoreflect.FloatKind || k == protoreflect.DoubleKind
	str := k == protoreflect.StringKind
	switch typ {
	case typeString, typeGeography:
		if str {
			return func(v protoreflect.Value) (string, error) { return canonicalString(v.String()) }
		}
		if k == protoreflect.EnumKind {
			return func(v protoreflect.Value) (string, error) {
				if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
					return string(ev.Name()), nil
				}
				return "", fmt.Errorf("unknown enum number %d", v.Enum())
			}
		}
	case typeJSON:
		if str {
			return func(v protoreflect.Value) (string, error) {
				if !json.Valid([]byte(v.String())) {
					return "", fmt.Errorf("invalid JSON value %q", v.String())
				}
				return v.String(), nil
			}
		}
	case typeBytes:
		if k == protoreflect.BytesKind {
			return func(v protoreflect.Value) (string, error) { return canonicalBytes(v.Bytes()), nil }
		}
		if str {
			return func(v protoreflect.Value) (string, error) { return canonicalBytes([]byte(v.String())), nil }
		}
	case typeInteger:
		if signed || unsigned {
			return func(v protoreflect.Value) (string, error) {
				n, err := integer(v)
				return canonicalInt(n), err
			}
		}
		if k == protoreflect.EnumKind {
			return func(v protoreflect.Value) (string, error) { return canonicalInt(int64(v.Enum())), nil }
		}
	case typeFloat:
		if isFloat {
			return func(v protoreflect.Value) (string, error) { return canonicalFloat(v.Float()), nil }
		}
	case typeBoolean:
		if k == protoreflect.BoolKind {
			return func(v protoreflect.Value) (string, error) { return fmt.Sprint(v.Bool()), nil }
		}
	case typeNumeric, typeBigNumeric:
		switch {
		case k == protoreflect.BytesKind:
			return func(v protoreflect.Value) (string, error) { return decodeDecimalBytes(v.Bytes(), typ) }
		case str:
			return func(v protoreflect.Value) (string, error) { return parseDecimal(v.String(), typ) }
		case signed || unsigned:
			return func(v protoreflect.Value) (string, error) {
				n, err := integer(v)
				if err != nil {
					return "", err
				}
				return canonicalDecimal(new(big.Rat).SetInt64(n), typ)
			}
		case isFloat:
			return func(v protoreflect.Value) (string, error) {
				r := new(big.Rat)
				if r.SetFloat64(v.Float()) == nil {
					return "", fmt.Errorf("%s cannot hold %v", typ, v.Float())
				}
				return canonicalDecimal(r, typ)
			}
		}
	case typeTimestamp:
		if signed || unsigned {
			return func(v protoreflect.Value) (string, error) {
				n, err := integer(v)
				if err != nil {
					return "", err
				}
				return canonicalTimestampMicros(n)
			}
		}
		if str {
			return func(v protoreflect.Value) (string, error) { return parseTimestamp(v.String()) }
		}
	case typeDate:
		if signed || unsigned {
			return func(v protoreflect.Value) (string, error) {
				n, err := integer(v)
				if err != nil {
					return "", err
				}
				return canonicalDateDays(n)
			}
		}
		if str {
			return func(v protoreflect.Value) (string, error) { return parseDate(v.String()) }
		}
	case typeTime, typeDatetime:
		packed, parse := decodePackedTime, parseTime
		if typ == typeDatetime {
			packed, parse = decodePackedDatetime, parseDatetime
		}
		if k == protoreflect.Int64Kind || k == protoreflect.Sint64Kind || k == protoreflect.Sfixed64Kind {
			return func(v protoreflect.Value) (string, error) { return packed(v.Int()) }
		}
		if str {
			return func(v protoreflect.Value) (string, error) { return parse(v.String()) }
		}
	}
	return nil
}
