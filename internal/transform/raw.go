package transform

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// The JSON fast path. Decoding a JSON value into a map, and encoding the
// map again for the sink, cost more than the transforms themselves (see
// BENCHMARKS.md, Transforms). When every step names only top-level fields
// and every expression reads the value only as value.NAME, a chain can
// work on the value's bytes instead: ScanJSONObject indexes the members,
// an expression's value.NAME decodes that member alone, set, drop, rename
// and mask keep their changes beside the bytes, and the result is written
// by copying the untouched members and appending the changed ones. The
// record that comes out is the one the map path gives, but for the order
// of its members (set, renamed and masked ones come last); any record the
// index cannot describe exactly (bad JSON, a repeated key, escapes in a
// key, invalid UTF-8, a tombstone) and any record a step fails on goes
// through the map path instead, so errors are that path's.

// RawJSON reports whether the chain can run on JSON values without
// decoding them (TransformJSON).
func (c *Chain) RawJSON() bool { return c != nil && c.rawJSON }

// rawJSONStep reports whether s can run on a value's bytes.
func rawJSONStep(s *step) bool {
	for _, np := range s.exprs {
		if s.kind == kindSet && len(np.path) != 1 {
			return false
		}
	}
	for _, f := range s.fields {
		if len(f.parts) != 1 {
			return false
		}
	}
	for _, rn := range s.renames {
		if len(rn[0].parts) != 1 || len(rn[1].parts) != 1 {
			return false
		}
	}
	for _, m := range s.masks {
		if len(m.parts) != 1 {
			return false
		}
	}
	return true
}

// readsValueFieldsOnly reports whether every use of the variable value in
// the checked expression is the operand of a field selection (value.NAME,
// has(value.NAME)): then a value that can only look fields up serves.
// value passed whole (size(value), value["a"], a map copy) needs the map.
func readsValueFieldsOnly(checked *cel.Ast) bool {
	tree := checked.NativeRep()
	nav := ast.NavigateAST(tree)
	idents, selected := 0, 0
	for _, id := range ast.MatchDescendants(nav, ast.KindMatcher(ast.IdentKind)) {
		if id.AsIdent() == "value" {
			idents++
		}
	}
	for _, sel := range ast.MatchDescendants(nav, ast.KindMatcher(ast.SelectKind)) {
		if op := sel.AsSelect().Operand(); op.Kind() == ast.IdentKind && op.AsIdent() == "value" {
			selected++
		}
	}
	return idents == selected
}

// jsonValueDecoder decodes a value the fast path cannot take, exactly as
// the pipeline's json decoder would (the key is left as it is).
var jsonValueDecoder = func() connector.Decoder {
	d, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		panic(err) // a fixed, valid format
	}
	return d
}()

// TransformJSON is Transform for a record whose value is JSON that has
// not been decoded (Fields nil). When the chain keeps the record and has
// field steps, the new value is left in r.Reshaped, encoded as the JSON
// encoder would encode the fields but for the order of the members, and
// r.Fields stays nil; a record the fast path cannot take is decoded into
// r.Fields and transformed as Transform does, and a value that is not
// JSON is the decoder's *connector.RecordError. Use it only when the
// chain's RawJSON is true and the sink encodes JSON.
func (c *Chain) TransformJSON(r *connector.Record) (keep bool, err error) {
	rr := rawRecords.Get().(*rawRecord)
	defer rr.release()
	ok := false
	if r.Value != nil && r.Fields == nil {
		rr.members, ok = codec.ScanJSONObject(r.Value, rr.members)
	}
	if ok {
		rr.data = r.Value
		key, keyFields, headers := r.Key, r.KeyFields, r.Headers
		if keep, ok = c.transformRaw(r, rr); ok {
			return keep, nil
		}
		// A step failed, or the result does not encode: the map path
		// gives the error, and a dead letter its fields.
		r.Key, r.KeyFields, r.Headers, r.Reshaped = key, keyFields, headers, nil
	}
	if err := jsonValueDecoder.Decode(context.Background(), r); err != nil { // JSON waits on nothing
		return false, err
	}
	return c.Transform(r)
}

// JSONTransformer is the chain as a connector.Transformer of undecoded
// JSON values (TransformJSON), for a pipeline whose decoder leaves values
// raw.
func (c *Chain) JSONTransformer() connector.Transformer { return jsonTransformer{c} }

type jsonTransformer struct{ c *Chain }

func (t jsonTransformer) Transform(r *connector.Record) (bool, error) { return t.c.TransformJSON(r) }

// transformRaw runs the steps on rr; ok false: a step failed, or the
// result does not encode, and nothing of r but its key and headers (and
// Reshaped) was changed.
func (c *Chain) transformRaw(r *connector.Record, rr *rawRecord) (keep, ok bool) {
	act := newActivation(r)
	defer act.release()
	act.raw = rr
	for i := range c.steps {
		s := &c.steps[i]
		var err error
		switch s.kind {
		case kindFilter, kindKey, kindHeaders:
			keep, err = s.apply(act)
			if err == nil && !keep {
				return false, true
			}
		default:
			err = s.applyRaw(act, rr)
		}
		if err != nil {
			return false, false
		}
	}
	out, err := rr.encode(len(r.Value))
	if err != nil {
		return false, false
	}
	r.Reshaped, r.Schema = out, nil
	return true, true
}

// applyRaw is apply for set, drop, rename and mask on a rawRecord.
func (s *step) applyRaw(act *activation, rr *rawRecord) error {
	switch s.kind {
	case kindSet:
		var small [4]any
		vals := small[:0]
		for _, np := range s.exprs {
			if v, ok := np.expr.evalNative(act); ok {
				vals = append(vals, rr.box(v))
				continue
			}
			out, _, err := np.expr.program.Eval(act)
			if err != nil {
				return err
			}
			if isJSONScalar(out) {
				// Kept as it is: written without boxing a Go value.
				vals = append(vals, out)
				continue
			}
			v, err := native(out)
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		for i, np := range s.exprs {
			rr.set(np.name, np.jsonName, vals[i])
		}
	case kindDrop:
		for _, f := range s.fields {
			rr.drop(f.name)
		}
	case kindRename:
		for _, rn := range s.renames {
			v, ok := rr.get(rn[0].name)
			if !ok {
				continue
			}
			rr.drop(rn[0].name)
			rr.set(rn[1].name, "", v)
		}
	case kindMask:
		for _, m := range s.masks {
			v, ok := rr.get(m.name)
			if !ok || v == nil {
				continue
			}
			rr.set(m.name, "", mask(v, m.method))
		}
	}
	return nil
}

// rawRecord is a JSON value as its indexed bytes plus the changes the
// steps made: members gone (dropped, or replaced by a set), and the set
// fields in the order they were first set. CEL finds its fields through
// FindStringKey, which the interpreter asks before anything else.
type rawRecord struct {
	data    []byte
	members []codec.RawMember
	gone    uint64 // bit i: members[i] is dropped or replaced (at most 64 members)
	sets    []rawSet
	slab    fieldSlab    // the fields expressions read, boxed
	scratch bytes.Buffer // encode's, over out's space
	out     outputChunk
}

// rawSet is a field a step set: a scalar CEL value (isJSONScalar), or
// the Go value a decoder would give.
type rawSet struct {
	name     string
	jsonName string // `"name":`, or empty to quote name when written
	val      any
}

// isJSONScalar reports whether v is a CEL value writeSet writes itself.
func isJSONScalar(v ref.Val) bool {
	switch v.(type) {
	case types.String, types.Int, types.Double, types.Bool, types.Null:
		return true
	}
	return false
}

// writeSet writes a set field as the JSON encoder writes the Go value
// native gives for it.
func writeSet(buf *bytes.Buffer, s rawSet) error {
	if s.jsonName != "" {
		buf.WriteString(s.jsonName)
	} else {
		codec.AppendJSONName(buf, s.name)
	}
	cv, ok := s.val.(ref.Val)
	if !ok {
		return codec.AppendJSONValue(buf, s.val)
	}
	switch v := cv.(type) {
	case types.String:
		codec.AppendJSONString(buf, string(v))
	case types.Int:
		codec.AppendJSONInt(buf, int64(v))
	case types.Double:
		return codec.AppendJSONFloat(buf, float64(v))
	case types.Bool:
		buf.WriteString(strconv.FormatBool(bool(v)))
	default: // types.Null
		buf.WriteString("null")
	}
	return nil
}

var rawRecords = sync.Pool{New: func() any { return new(rawRecord) }}

// release returns rr to the pool.
func (rr *rawRecord) release() {
	rr.data, rr.gone = nil, 0
	// members and the slab's strings keep pointing into the last value
	// they described (clearing them cost more than the rest of release):
	// a pooled rawRecord holds one value alive until it is used again or
	// the pool is dropped at a collection.
	clear(rr.sets)
	rr.members, rr.sets = rr.members[:0], rr.sets[:0]
	rr.slab.reset()
	rawRecords.Put(rr)
}

// FindStringKey is the field name's value for an expression: what the
// fields adapter makes of the value the json decoder would have put in
// Fields, after the steps so far. Strings without escapes and numbers are
// made CEL values here, boxed once rather than once as Go values and
// again by the adapter.
func (rr *rawRecord) FindStringKey(name string) (any, bool) {
	if v, ok := rr.setValue(name); ok {
		return v, true
	}
	m := rr.member(name)
	if m == nil {
		return nil, false
	}
	if text, isString, ok := codec.RawMemberText(rr.data, m); ok {
		if isString {
			return rr.slab.boxString(text), true
		}
		// celNumber, boxed from the slab.
		if hasFraction(text) {
			if f, err := strconv.ParseFloat(text, 64); err == nil {
				return rr.slab.boxDouble(types.Double(f)), true
			}
		} else if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return rr.slab.boxInt(types.Int(i)), true
		}
	}
	return codec.RawMemberValue(rr.data, m), true
}

// get is the field's value as the json decoder would have put it in
// Fields (as a set step would have, for one it set), after the steps so
// far.
func (rr *rawRecord) get(name string) (any, bool) {
	if v, ok := rr.setValue(name); ok {
		if cv, ok := v.(ref.Val); ok {
			v, _ = native(cv) // a scalar (isJSONScalar): no error
		}
		return v, true
	}
	if m := rr.member(name); m != nil {
		return codec.RawMemberValue(rr.data, m), true
	}
	return nil, false
}

func (rr *rawRecord) setValue(name string) (any, bool) {
	for i := range rr.sets {
		if rr.sets[i].name == name {
			return rr.sets[i].val, true
		}
	}
	return nil, false
}

// member is the member called name, nil when there is none or it is gone.
func (rr *rawRecord) member(name string) *codec.RawMember {
	for i := range rr.members {
		if rr.members[i].Key == name {
			if rr.gone&(1<<i) != 0 {
				return nil
			}
			return &rr.members[i]
		}
	}
	return nil
}

// set sets the field name to v; jsonName, when not empty, is name as
// codec.AppendJSONName writes it.
func (rr *rawRecord) set(name, jsonName string, v any) {
	rr.hide(name)
	for i := range rr.sets {
		if rr.sets[i].name == name {
			rr.sets[i].val, rr.sets[i].jsonName = v, jsonName
			return
		}
	}
	rr.sets = append(rr.sets, rawSet{name, jsonName, v})
}

func (rr *rawRecord) drop(name string) {
	rr.hide(name)
	for i := range rr.sets {
		if rr.sets[i].name == name {
			rr.sets = append(rr.sets[:i], rr.sets[i+1:]...)
			return
		}
	}
}

// hide marks the member called name (keys are unique) as gone.
func (rr *rawRecord) hide(name string) {
	for i := range rr.members {
		if rr.members[i].Key == name {
			rr.gone |= 1 << i
			return
		}
	}
}

// encode writes the record: the members left, then the set fields,
// into rr's output chunk (the record keeps the bytes): one allocation
// for many records instead of one each. sizeHint is the value's size.
func (rr *rawRecord) encode(sizeHint int) ([]byte, error) {
	buf := &rr.scratch
	*buf = *bytes.NewBuffer(rr.out.space(sizeHint + 32*len(rr.sets)))
	buf.WriteByte('{')
	first := !codec.AppendRawMembers(buf, rr.data, rr.members, rr.gone)
	for _, s := range rr.sets {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		if err := writeSet(buf, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	buf.WriteByte('}')
	out := buf.Bytes()
	*buf = bytes.Buffer{}
	return rr.out.take(out), nil
}

// outputChunk hands out the new values' bytes from a shared chunk. A
// value's slice is capped at its length, so appending to it copies; a
// chunk is garbage once no value written into it is referenced, so a
// value still in flight holds at most outputChunkSize bytes alive.
type outputChunk struct{ free []byte }

const (
	outputChunkSize = 32 << 10
	// Values that may be larger get their own slice.
	outputChunkMaxValue = 2 << 10
)

// space is an empty slice to write a value of about n bytes into: the
// chunk's free space, or a slice of its own for a large value.
func (c *outputChunk) space(n int) []byte {
	if n > outputChunkMaxValue {
		return make([]byte, 0, n)
	}
	if len(c.free) < n {
		c.free = make([]byte, outputChunkSize)
	}
	return c.free[:0]
}

// take is out, written into space's slice, with the chunk's space it
// used taken out of the free space; a value that outgrew the space was
// moved by append, and the chunk is left as it was.
func (c *outputChunk) take(out []byte) []byte {
	n := len(out)
	if n > 0 && len(c.free) >= n && &c.free[0] == &out[0] {
		c.free = c.free[n:]
	}
	return out[:n:n]
}
