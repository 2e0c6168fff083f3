package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// avroWriter accumulates Avro binary.
type avroWriter struct{ buf []byte }

func (w *avroWriter) writeLong(v int64) {
	u := uint64(v<<1) ^ uint64(v>>63)
	w.buf = binary.AppendUvarint(w.buf, u)
}

func (w *avroWriter) writeBytes(b []byte) {
	w.writeLong(int64(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *avroWriter) writeString(s string) {
	w.writeLong(int64(len(s)))
	w.buf = append(w.buf, s...)
}

// encodeMode says how strictly Go values must match Avro types.
type encodeMode uint8

const (
	// lenient accepts the values other codecs produce for a type: integral
	// floats and json.Number for ints, strings for bytes, RFC 3339 strings
	// for timestamps, decimal strings for decimals.
	lenient encodeMode = iota
	// strict accepts only the Go types this package decodes the Avro type
	// to; unions try it first, so a value picks its natural branch (an
	// int64 the long branch, not the double one) before any coercion.
	strict
	// defaultUnion encodes a field default: a union's default is always
	// its first branch.
	defaultUnion
)

// errMismatch is the cheap error a strict attempt fails with.
var errMismatch = errors.New("value does not match the type")

func mismatch(m encodeMode, v any, typ string) error {
	if m == strict {
		return errMismatch
	}
	return fmt.Errorf("%T value %s cannot be encoded as Avro %s", v, short(v), typ)
}

// short prints v briefly for an error message.
func short(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// valueEncoder writes one Go value as Avro binary for a schema.
type valueEncoder struct {
	encode func(w *avroWriter, v any, m encodeMode) error
}

// compileEncoder builds the encoder for schema. Records are map[string]any
// (a missing field takes its default, else null when nullable); see
// encodeMode for the Go types each Avro type accepts.
func compileEncoder(schema avro.Schema) (*valueEncoder, error) {
	c := &encoderCompiler{records: map[string]*valueEncoder{}}
	return c.compile(schema)
}

type encoderCompiler struct {
	records map[string]*valueEncoder
}

func (c *encoderCompiler) compile(s avro.Schema) (*valueEncoder, error) {
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return &valueEncoder{func(_ *avroWriter, v any, m encodeMode) error {
			if v != nil {
				return mismatch(m, v, "null")
			}
			return nil
		}}, nil
	case avro.Boolean:
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			b, ok := v.(bool)
			if !ok {
				return mismatch(m, v, "boolean")
			}
			if b {
				w.buf = append(w.buf, 1)
			} else {
				w.buf = append(w.buf, 0)
			}
			return nil
		}}, nil
	case avro.Int, avro.Long:
		return intEncoder(s.Type(), logicalType(s)), nil
	case avro.Float:
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			f, ok := toFloat(v, m)
			if !ok {
				return mismatch(m, v, "float")
			}
			w.buf = binary.LittleEndian.AppendUint32(w.buf, math.Float32bits(float32(f)))
			return nil
		}}, nil
	case avro.Double:
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			f, ok := toFloat(v, m)
			if !ok {
				return mismatch(m, v, "double")
			}
			w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(f))
			return nil
		}}, nil
	case avro.String:
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			switch x := v.(type) {
			case string:
				w.writeString(x)
				return nil
			case []byte:
				if m != strict && utf8.Valid(x) {
					w.writeBytes(x)
					return nil
				}
			}
			return mismatch(m, v, "string")
		}}, nil
	case avro.Bytes:
		if dec, ok := logicalOf(s).(*avro.DecimalLogicalSchema); ok {
			return decimalEncoder(dec, -1), nil
		}
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			b, ok := toBytes(v, m)
			if !ok {
				return mismatch(m, v, "bytes")
			}
			w.writeBytes(b)
			return nil
		}}, nil
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		if dec, ok := fs.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimalEncoder(dec, fs.Size()), nil
		}
		size := fs.Size()
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			b, ok := toBytes(v, m)
			if !ok || len(b) != size {
				return mismatch(m, v, fmt.Sprintf("fixed(%d)", size))
			}
			w.buf = append(w.buf, b...)
			return nil
		}}, nil
	case avro.Enum:
		syms := s.(*avro.EnumSchema).Symbols()
		index := make(map[string]int64, len(syms))
		for i, sym := range syms {
			index[sym] = int64(i)
		}
		return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
			str, _ := v.(string)
			i, ok := index[str]
			if !ok {
				return mismatch(m, v, "enum "+typeName(s))
			}
			w.writeLong(i)
			return nil
		}}, nil
	case avro.Array:
		return c.array(s.(*avro.ArraySchema))
	case avro.Map:
		return c.mapOf(s.(*avro.MapSchema))
	case avro.Record:
		return c.record(s.(*avro.RecordSchema))
	case avro.Union:
		return c.union(s.(*avro.UnionSchema))
	}
	return nil, fmt.Errorf("unsupported Avro type %s", s.Type())
}

func (c *encoderCompiler) array(s *avro.ArraySchema) (*valueEncoder, error) {
	items, err := c.compile(s.Items())
	if err != nil {
		return nil, err
	}
	return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
		list, ok := v.([]any)
		if !ok {
			rv := reflect.ValueOf(v)
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array || rv.Type().Elem() == byteType {
				return mismatch(m, v, "array")
			}
			list = make([]any, rv.Len())
			for i := range list {
				list[i] = rv.Index(i).Interface()
			}
		}
		if len(list) > 0 {
			w.writeLong(int64(len(list)))
			for i, x := range list {
				if err := items.encode(w, x, m); err != nil {
					return wrapPath(m, fmt.Sprintf("[%d]", i), err)
				}
			}
		}
		w.writeLong(0)
		return nil
	}}, nil
}

func (c *encoderCompiler) mapOf(s *avro.MapSchema) (*valueEncoder, error) {
	values, err := c.compile(s.Values())
	if err != nil {
		return nil, err
	}
	return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
		entries, ok := v.(map[string]any)
		if !ok {
			rv := reflect.ValueOf(v)
			if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
				return mismatch(m, v, "map")
			}
			entries = make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				entries[it.Key().String()] = it.Value().Interface()
			}
		}
		if len(entries) > 0 {
			w.writeLong(int64(len(entries)))
			for k, x := range entries {
				w.writeString(k)
				if err := values.encode(w, x, m); err != nil {
					return wrapPath(m, strconv.Quote(k), err)
				}
			}
		}
		w.writeLong(0)
		return nil
	}}, nil
}

type fieldEncoder struct {
	name     string
	enc      *valueEncoder
	def      []byte // encoded default; nil when the field has none
	nullable bool   // a union with null: a missing value is null
	nullIdx  int64
}

func (c *encoderCompiler) record(s *avro.RecordSchema) (*valueEncoder, error) {
	if e, ok := c.records[s.FullName()]; ok {
		return e, nil
	}
	e := &valueEncoder{}
	c.records[s.FullName()] = e
	fields := make([]fieldEncoder, len(s.Fields()))
	known := make(map[string]bool, len(fields))
	for i, f := range s.Fields() {
		enc, err := c.compile(f.Type())
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name(), err)
		}
		fe := fieldEncoder{name: f.Name(), enc: enc}
		if u, ok := deref(f.Type()).(*avro.UnionSchema); ok {
			for j, t := range u.Types() {
				if t.Type() == avro.Null {
					fe.nullable, fe.nullIdx = true, int64(j)
					break
				}
			}
		}
		if f.HasDefault() {
			w := &avroWriter{}
			if err := enc.encode(w, f.Default(), defaultUnion); err != nil {
				return nil, fmt.Errorf("field %s default: %w", f.Name(), err)
			}
			fe.def = w.buf
		}
		fields[i] = fe
		known[f.Name()] = true
	}
	name := s.FullName()
	e.encode = func(w *avroWriter, v any, m encodeMode) error {
		rec, ok := v.(map[string]any)
		if !ok {
			return mismatch(m, v, "record "+name)
		}
		if m == strict {
			// A record branch of a union is picked only when every key
			// belongs to it.
			for k := range rec {
				if !known[k] {
					return errMismatch
				}
			}
		}
		for i := range fields {
			f := &fields[i]
			x, present := rec[f.name]
			switch {
			case present:
				if err := f.enc.encode(w, x, m); err != nil {
					return wrapPath(m, f.name, err)
				}
			case f.def != nil:
				w.buf = append(w.buf, f.def...)
			case f.nullable:
				w.writeLong(f.nullIdx)
			default:
				if m == strict {
					return errMismatch
				}
				return fmt.Errorf("record %s: field %s is missing and has no default", name, f.name)
			}
		}
		return nil
	}
	return e, nil
}

// union writes the branch index and the value. nil is the null branch.
// Otherwise the first branch that takes the value without coercion wins,
// then the first that takes it with coercion (see encodeMode).
func (c *encoderCompiler) union(s *avro.UnionSchema) (*valueEncoder, error) {
	types := s.Types()
	branches := make([]*valueEncoder, len(types))
	nullIdx := int64(-1)
	for i, t := range types {
		if t.Type() == avro.Null && nullIdx < 0 {
			nullIdx = int64(i)
		}
		b, err := c.compile(t)
		if err != nil {
			return nil, err
		}
		branches[i] = b
	}
	name := s.String()
	return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
		if m == defaultUnion {
			w.writeLong(0)
			return branches[0].encode(w, v, m)
		}
		if v == nil {
			if nullIdx < 0 {
				return mismatch(m, v, "union "+name)
			}
			w.writeLong(nullIdx)
			return nil
		}
		start := len(w.buf)
		modes := []encodeMode{strict, lenient}
		if m == strict {
			modes = modes[:1]
		}
		var last error
		for _, mode := range modes {
			for i, b := range branches {
				if int64(i) == nullIdx {
					continue
				}
				w.buf = w.buf[:start]
				w.writeLong(int64(i))
				err := b.encode(w, v, mode)
				if err == nil {
					return nil
				}
				last = err
			}
		}
		w.buf = w.buf[:start]
		if m == strict {
			return errMismatch
		}
		if len(branches) == 2 && nullIdx >= 0 && last != nil {
			return last // a nullable union: the one branch's own error says more
		}
		return fmt.Errorf("%T value %s matches no branch of union %s", v, short(v), name)
	}}, nil
}

// wrapPath prefixes a field or index to an encoding error.
func wrapPath(m encodeMode, at string, err error) error {
	if m == strict {
		return err
	}
	return fmt.Errorf("%s: %w", at, err)
}
