package bigquery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Avro straight into proto rows.
//
// With avro-confluent values, no transforms and a table template that
// does not read .Value, the sink takes records undecoded
// (connector.FieldVisitorSink): it learns each record's schema from the
// registry id in its header (valueVisitor.ValueSchema; the table, its
// columns and the row descriptor follow from it, cached per table version
// and schema id as before), then has the codec decode the value field by
// field (VisitFields, no map per record) and writes each field as
// protobuf wire bytes for its column (wireRow), without building a
// dynamic proto message. The rows are the same as the map path's
// (TestDirectEncodingMatchesTheMapPath).

// valueVisitor is what the direct path needs of the codec
// (codec.RecordDecoder).
type valueVisitor interface {
	connector.FieldVisitor
	ValueSchema(ctx context.Context, rec *connector.Record) (*connector.Schema, error)
}

// visiting reports whether the sink takes values undecoded.
func (s *Sink) visiting() bool { return s.visitor != nil }

// VisitsFields implements connector.FieldVisitorSink.
func (s *Sink) VisitsFields() bool { return s.visiting() || s.json != nil }

// directVisitor returns the visitor the sink decodes values with, or nil
// when the map path must be used: no visitor given, or a table template
// that reads value fields.
func directVisitor(v connector.FieldVisitor, table string) valueVisitor {
	vv, ok := v.(valueVisitor)
	if !ok || strings.Contains(table, ".Value") {
		return nil
	}
	return vv
}

// learnSchema sets rec.Schema from its value's header, for routing and
// table preparation; bad bytes make a *connector.RecordError.
func (s *Sink) learnSchema(ctx context.Context, rec *connector.Record) error {
	schema, err := s.visitor.ValueSchema(ctx, rec)
	if err != nil {
		return err
	}
	if schema == nil {
		return &connector.RecordError{Record: rec, Reason: "schema", Err: errors.New("the value has no schema to write it by")}
	}
	rec.Schema = schema
	return nil
}

// encodeVisited encodes one undecoded record as a row of plan.
func (s *Sink) encodeVisited(ctx context.Context, plan *rowPlan, rec *connector.Record) ([]byte, error) {
	var a rowArena
	return a.encodeVisited(ctx, s, plan, rec, 1)
}

// arenaChunk is the size of the buffers a rowArena hands out rows from.
const arenaChunk = 64 << 10

// rowArena lets the rows of one encode call share a few large buffers
// instead of growing a buffer of their own each (several allocations per
// row). A row is never written after it is encoded, so rows of one chunk
// may be sent, retried or dropped independently; a chunk is freed with the
// last row that uses it.
type rowArena struct{ buf []byte }

// encodeVisited encodes rec into the arena; left is how many rows (this
// one included) the caller still has to encode, so that a few rows do not
// take a whole chunk.
func (a *rowArena) encodeVisited(ctx context.Context, s *Sink, plan *rowPlan, rec *connector.Record, left int) ([]byte, error) {
	start := a.reserve(rec, left)
	w := wireRow{plan: plan, buf: a.buf}
	if _, err := s.visitor.VisitFields(ctx, rec, w.visit); err != nil {
		return nil, err
	}
	if w.err != nil {
		return nil, w.err
	}
	return a.finish(s, plan, rec, w.buf, start)
}

// reserve makes room in the arena for the row of rec (twice its value's
// size, which a row seldom outgrows) and returns where the row starts.
func (a *rowArena) reserve(rec *connector.Record, left int) int {
	if need := 2*len(rec.Value) + 64; cap(a.buf)-len(a.buf) < need {
		a.buf = make([]byte, 0, max(min(arenaChunk, left*need), need))
	}
	return len(a.buf)
}

// finish appends the metadata columns to the row written from start in
// buf (the arena's chunk, unless the row outgrew it) and returns the row.
func (a *rowArena) finish(s *Sink, plan *rowPlan, rec *connector.Record, buf []byte, start int) ([]byte, error) {
	w := wireRow{plan: plan, buf: buf}
	for _, name := range s.cfg.Metadata {
		if err := w.meta(rec, name); err != nil {
			return nil, err
		}
	}
	end := len(w.buf)
	if cap(w.buf) == cap(a.buf) {
		a.buf = w.buf // still the chunk: the row stays in it
	}
	return w.buf[start:end:end], nil
}

// wireRow appends the fields of one row as protobuf wire bytes.
type wireRow struct {
	plan *rowPlan
	buf  []byte
	err  error // the first field that fit no column
	next int   // the column after the last one found: fields mostly come in column order
}

func (w *wireRow) visit(name string, v any) {
	if w.err != nil || v == nil {
		return
	}
	var c *colPlan
	if w.next < len(w.plan.cols) && w.plan.cols[w.next].name == name {
		c = w.plan.cols[w.next]
		w.next++
	} else if c = w.plan.column(name); c == nil {
		w.err = fmt.Errorf("field %s has no column in the table", name)
		return
	} else {
		w.next = slices.Index(w.plan.cols, c) + 1
	}
	w.buf, w.err = c.appendWire(w.buf, v, "")
}

func (w *wireRow) meta(rec *connector.Record, name string) error {
	col := metadataColumns[name]
	c := w.plan.column(col.Name)
	if c == nil {
		return fmt.Errorf("metadata column %s is missing from the table", col.Name)
	}
	v, ok := metadataValue(rec, name)
	if !ok {
		return nil
	}
	var err error
	w.buf, err = c.appendWire(w.buf, v, "")
	return err
}

// appendFields appends a record's fields as the wire bytes of plan.
func (p *rowPlan) appendFields(buf []byte, fields map[string]any, path string) ([]byte, error) {
	for k, v := range fields {
		if v == nil {
			continue
		}
		c := p.column(k)
		if c == nil {
			return nil, fmt.Errorf("field %s%s has no column in the table", path, k)
		}
		var err error
		if buf, err = c.appendWire(buf, v, path); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// appendWire appends v as column c: one field, or one per element of a
// REPEATED column (unpacked, as proto2 writes them), with the values
// scalar converts to.
func (c *colPlan) appendWire(buf []byte, v any, path string) ([]byte, error) {
	if !c.repeated {
		return c.appendOne(buf, v, path)
	}
	var err error
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if e == nil {
				return nil, fmt.Errorf("field %s%s: an array element is null, which a REPEATED column cannot hold", path, c.name)
			}
			if buf, err = c.appendOne(buf, e, path); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		if c.sub == nil {
			return nil, fmt.Errorf("field %s%s: an object does not fit REPEATED %s", path, c.name, c.typ)
		}
		// An Avro map: REPEATED RECORD {key, value}, in key order.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if buf, err = c.appendOne(buf, map[string]any{"key": k, "value": x[k]}, path); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("field %s%s: %s does not fit REPEATED %s", path, c.name, describe(v), c.typ)
	}
	return buf, nil
}

func (c *colPlan) appendOne(buf []byte, v any, path string) ([]byte, error) {
	num := c.fd.Number()
	if c.sub != nil {
		fields, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %s%s: %s does not fit RECORD", path, c.name, describe(v))
		}
		msg, err := c.sub.appendFields(nil, fields, path+c.name+".")
		if err != nil {
			return nil, err
		}
		buf = protowire.AppendTag(buf, num, protowire.BytesType)
		return protowire.AppendBytes(buf, msg), nil
	}
	val, err := scalar(c.typ, v)
	if err != nil {
		return nil, fmt.Errorf("field %s%s: %w", path, c.name, err)
	}
	return c.appendScalar(buf, val, path)
}

// appendScalar appends val, a value scalar converted for c, as c's field.
func (c *colPlan) appendScalar(buf []byte, val protoreflect.Value, path string) ([]byte, error) {
	num := c.fd.Number()
	switch c.fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Int32Kind:
		buf = protowire.AppendTag(buf, num, protowire.VarintType)
		return protowire.AppendVarint(buf, uint64(val.Int())), nil
	case protoreflect.BoolKind:
		buf = protowire.AppendTag(buf, num, protowire.VarintType)
		return protowire.AppendVarint(buf, protowire.EncodeBool(val.Bool())), nil
	case protoreflect.DoubleKind:
		buf = protowire.AppendTag(buf, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(buf, math.Float64bits(val.Float())), nil
	case protoreflect.StringKind:
		buf = protowire.AppendTag(buf, num, protowire.BytesType)
		return protowire.AppendString(buf, val.String()), nil
	case protoreflect.BytesKind:
		buf = protowire.AppendTag(buf, num, protowire.BytesType)
		return protowire.AppendBytes(buf, val.Bytes()), nil
	}
	return nil, fmt.Errorf("field %s%s: column kind %s is not written directly", path, c.name, c.fd.Kind())
}

// decimalBytesSmall is decimalBytes for the common case, without big
// arithmetic: a scale of at most 18 whose power of ten the denominator
// divides (always so for an Avro decimal of that scale or less) and a
// scaled value that fits an int64. false: take the general path.
func decimalBytesSmall(r *big.Rat, scale int) ([]byte, bool) {
	if scale > 18 || !r.Num().IsInt64() || !r.Denom().IsInt64() {
		return nil, false
	}
	pow := int64(1)
	for range scale {
		pow *= 10
	}
	num, den := r.Num().Int64(), r.Denom().Int64()
	if pow%den != 0 {
		return nil, false
	}
	mul := pow / den
	hi, lo := bits.Mul64(uint64(absInt64(num)), uint64(mul))
	if hi != 0 || lo > math.MaxInt64 {
		return nil, false
	}
	q := int64(lo)
	if num < 0 {
		q = -q
	}
	// Two's complement, little-endian, with room for the sign bit: the
	// length decimalBytes gives (magnitude bits / 8 + 1).
	n := bits.Len64(uint64(absInt64(q)))/8 + 1
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(q >> (8 * i))
	}
	return out, true
}

func absInt64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
