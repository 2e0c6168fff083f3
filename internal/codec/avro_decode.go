package codec

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// valueDecoder decodes one Avro value from a reader into its plain Go form
// (see AvroConfluent for the mapping). Decoders are compiled once per
// (writer schema, reader schema) pair and shared by every goroutine: they
// hold no per-record state.
type valueDecoder struct {
	decode func(r *avroReader) any
	// fields, for records, decodes the record's fields into r.members
	// instead of a map (VisitFields); nil for other types.
	fields func(r *avroReader)
	// width is the least number of bytes an encoded value takes; it lets a
	// block count be checked against the bytes left before allocating.
	width int
}

// maxDecimalScale bounds a decimal's scale: 10^scale is computed once per
// schema, and a hostile schema must not make that cost unbounded.
const maxDecimalScale = 1000

// compileDecoder builds the decoder that reads data written with writer
// into the shape of reader (the same schema when no reader is pinned),
// following Avro's schema resolution rules: fields matched by name or
// alias, writer-only fields skipped, reader-only fields set to their
// default, numeric promotions, enum symbols mapped by name, union branches
// matched by type and name.
func compileDecoder(writer, reader avro.Schema) (*valueDecoder, error) {
	c := &decoderCompiler{records: map[[2]string]*valueDecoder{}}
	return c.compile(writer, reader)
}

type decoderCompiler struct {
	// records holds the decoder of each named record pair, so recursive
	// schemas compile to a cycle of decoders instead of forever.
	records map[[2]string]*valueDecoder
}

func deref(s avro.Schema) avro.Schema {
	if ref, ok := s.(*avro.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

func logicalOf(s avro.Schema) avro.LogicalSchema {
	if l, ok := s.(avro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

func logicalType(s avro.Schema) avro.LogicalType {
	if l := logicalOf(s); l != nil {
		return l.Type()
	}
	return ""
}

var nullDecoder = &valueDecoder{decode: func(*avroReader) any { return nil }}

func (c *decoderCompiler) compile(writer, reader avro.Schema) (*valueDecoder, error) {
	writer, reader = deref(writer), deref(reader)
	if w, ok := writer.(*avro.UnionSchema); ok {
		return c.writerUnion(w, reader)
	}
	if r, ok := reader.(*avro.UnionSchema); ok {
		branch := matchBranch(writer, r)
		if branch == nil {
			return nil, fmt.Errorf("no branch of reader union %s matches writer type %s", r, typeName(writer))
		}
		return c.compile(writer, branch)
	}
	wt, rt := writer.Type(), reader.Type()
	if wt != rt && !promotable(wt, rt) {
		return nil, fmt.Errorf("writer type %s cannot be read as %s", typeName(writer), typeName(reader))
	}
	switch rt {
	case avro.Null:
		return nullDecoder, nil
	case avro.Boolean:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.readBool() }}, nil
	case avro.Int:
		return intDecoder(logicalType(reader)), nil
	case avro.Long:
		return longDecoder(wt, logicalType(reader)), nil
	case avro.Float:
		return floatDecoder(wt), nil
	case avro.Double:
		return doubleDecoder(wt), nil
	case avro.String:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxString(r.readString()) }}, nil
	case avro.Bytes:
		if dec, ok := logicalOf(reader).(*avro.DecimalLogicalSchema); ok {
			return decimalDecoder(dec, -1)
		}
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.readBytes() }}, nil
	case avro.Fixed:
		return fixedDecoder(writer.(*avro.FixedSchema), reader.(*avro.FixedSchema))
	case avro.Enum:
		return enumDecoder(writer.(*avro.EnumSchema), reader.(*avro.EnumSchema))
	case avro.Array:
		return c.array(writer.(*avro.ArraySchema), reader.(*avro.ArraySchema))
	case avro.Map:
		return c.mapOf(writer.(*avro.MapSchema), reader.(*avro.MapSchema))
	case avro.Record:
		return c.record(writer.(*avro.RecordSchema), reader.(*avro.RecordSchema))
	}
	return nil, fmt.Errorf("unsupported Avro type %s", rt)
}

// promotable reports Avro's allowed promotions from writer to reader type.
func promotable(w, r avro.Type) bool {
	switch w {
	case avro.Int:
		return r == avro.Long || r == avro.Float || r == avro.Double
	case avro.Long:
		return r == avro.Float || r == avro.Double
	case avro.Float:
		return r == avro.Double
	case avro.String:
		return r == avro.Bytes
	case avro.Bytes:
		return r == avro.String
	}
	return false
}

func typeName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// sameName reports whether a reader named type accepts a writer one: same
// full name, same unqualified name, or the writer's name among the
// reader's aliases.
func sameName(w, r avro.Schema) bool {
	wn, ok1 := w.(avro.NamedSchema)
	rn, ok2 := r.(avro.NamedSchema)
	if !ok1 || !ok2 {
		return true
	}
	if wn.FullName() == rn.FullName() || wn.Name() == rn.Name() {
		return true
	}
	for _, a := range rn.Aliases() {
		if a == wn.FullName() || a == wn.Name() {
			return true
		}
	}
	return false
}

// matchBranch picks the reader union branch for a (non-union) writer type:
// the first of the same type and full name, else of the same type and a
// matching short name or alias, else the first the writer type promotes to.
func matchBranch(writer avro.Schema, reader *avro.UnionSchema) avro.Schema {
	for _, b := range reader.Types() {
		b = deref(b)
		if b.Type() == writer.Type() && typeName(b) == typeName(writer) {
			return b
		}
	}
	for _, b := range reader.Types() {
		b = deref(b)
		if b.Type() == writer.Type() && sameName(writer, b) {
			return b
		}
	}
	for _, b := range reader.Types() {
		if promotable(writer.Type(), deref(b).Type()) {
			return b
		}
	}
	return nil
}

// writerUnion reads the branch index, then the branch's value. The value
// is returned as it is: a nullable union yields the value or nil, and a
// multi-branch union yields the branch's value, whose Go type (string,
// int64, map[string]any, ...) is all that tells the branches apart.
func (c *decoderCompiler) writerUnion(w *avro.UnionSchema, reader avro.Schema) (*valueDecoder, error) {
	types := w.Types()
	branches := make([]*valueDecoder, len(types))
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = typeName(t)
		target := reader
		if ru, ok := reader.(*avro.UnionSchema); ok {
			target = matchBranch(deref(t), ru)
			if target == nil {
				continue // only data written with this branch fails
			}
		}
		d, err := c.compile(t, target)
		if err != nil {
			if _, ok := reader.(*avro.UnionSchema); ok {
				return nil, err
			}
			continue
		}
		branches[i] = d
	}
	return &valueDecoder{width: 1, decode: func(r *avroReader) any {
		i := r.readLong()
		if r.err != nil {
			return nil
		}
		if i < 0 || i >= int64(len(branches)) {
			r.fail("union branch index %d out of range [0, %d)", i, len(branches))
			return nil
		}
		b := branches[i]
		if b == nil {
			r.fail("union branch %s has no match in the reader schema", names[i])
			return nil
		}
		if !r.enter() {
			return nil
		}
		v := b.decode(r)
		r.leave()
		return v
	}}, nil
}

func (c *decoderCompiler) array(w, rd *avro.ArraySchema) (*valueDecoder, error) {
	items, err := c.compile(w.Items(), rd.Items())
	if err != nil {
		return nil, fmt.Errorf("array items: %w", err)
	}
	return &valueDecoder{width: 1, decode: func(r *avroReader) any {
		if !r.enter() {
			return nil
		}
		defer r.leave()
		var out []any
		for {
			n := r.readBlockCount(items.width)
			if n == 0 || r.err != nil {
				break
			}
			if out == nil {
				out = make([]any, 0, min(n, 1024))
			}
			for range n {
				v := items.decode(r)
				if r.err != nil {
					r.within(fmt.Sprintf("[%d]", len(out)))
					return nil
				}
				out = append(out, v)
			}
		}
		if r.err != nil {
			return nil
		}
		if out == nil {
			out = []any{}
		}
		return out
	}}, nil
}

func (c *decoderCompiler) mapOf(w, rd *avro.MapSchema) (*valueDecoder, error) {
	values, err := c.compile(w.Values(), rd.Values())
	if err != nil {
		return nil, fmt.Errorf("map values: %w", err)
	}
	// Every entry has at least its key's length byte.
	width := 1 + values.width
	return &valueDecoder{width: 1, decode: func(r *avroReader) any {
		if !r.enter() {
			return nil
		}
		defer r.leave()
		out := map[string]any{}
		for {
			n := r.readBlockCount(width)
			if n == 0 || r.err != nil {
				break
			}
			for range n {
				k := r.readString()
				v := values.decode(r)
				if r.err != nil {
					r.within(fmt.Sprintf("[%q]", k))
					return nil
				}
				out[k] = v
			}
		}
		if r.err != nil {
			return nil
		}
		return out
	}}, nil
}
