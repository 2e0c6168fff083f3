package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"github.com/sluice-dev/sluice/internal/connector"
)

// ReasonTransform is the RecordError reason of a record a step could not
// be applied to (a missing field, a type mismatch): bad input, routed by
// on_error.
const ReasonTransform = "transform"

// Transform applies the steps to r in order. It returns false when a filter
// dropped the record. An expression that fails on r returns a
// *connector.RecordError (reason "transform") naming the step; r's key and
// headers are then as they arrived (its Value bytes are never changed).
func (c *Chain) Transform(r *connector.Record) (keep bool, err error) {
	act := newActivation(r)
	defer act.release()
	key, keyFields, headers := r.Key, r.KeyFields, r.Headers
	for i := range c.steps {
		keep, err = c.steps[i].apply(act)
		if err != nil {
			r.Key, r.KeyFields, r.Headers = key, keyFields, headers
			return false, &connector.RecordError{Record: r, Reason: ReasonTransform, Err: err}
		}
		if !keep {
			return false, nil
		}
	}
	return true, nil
}

func (s *step) apply(act *activation) (bool, error) {
	r := act.rec
	switch s.kind {
	case kindFilter:
		return evalBool(&s.expr, act, s.path, ".filter")
	case kindKey:
		out, err := s.expr.eval(act)
		if err != nil {
			return false, fmt.Errorf("%s.key: %w", s.path, err)
		}
		k, err := toBytes(out)
		if err != nil {
			return false, fmt.Errorf("%s.key: %w", s.path, err)
		}
		r.Key, r.KeyFields = k, nil
	case kindHeaders:
		// Evaluated first, all against the headers as they were.
		vals := make([][]byte, len(s.exprs))
		for i, np := range s.exprs {
			out, err := np.expr.eval(act)
			if err != nil {
				return false, fmt.Errorf("%s.headers.%s: %w", s.path, np.name, err)
			}
			if vals[i], err = toBytes(out); err != nil {
				return false, fmt.Errorf("%s.headers.%s: %w", s.path, np.name, err)
			}
		}
		hs := make([]connector.Header, 0, len(r.Headers)+len(s.exprs))
		for _, h := range r.Headers {
			if !s.setsHeader(h.Key) {
				hs = append(hs, h)
			}
		}
		for i, np := range s.exprs {
			hs = append(hs, connector.Header{Key: np.name, Value: vals[i]})
		}
		r.Headers = hs // a new slice: the source's may be shared
		act.headers = nil
	case kindSet:
		fields, err := act.fields(s.path, ".set")
		if err != nil {
			return false, err
		}
		var small [4]any // most set steps have a few fields
		vals := small[:0]
		for _, np := range s.exprs {
			if v, ok := np.expr.evalNative(act); ok {
				vals = append(vals, v.goValue())
				continue
			}
			out, _, err := np.expr.program.Eval(act)
			if err != nil {
				return false, fmt.Errorf("%s.set.%s: %w", s.path, np.name, err)
			}
			v, err := native(out)
			if err != nil {
				return false, fmt.Errorf("%s.set.%s: %w", s.path, np.name, err)
			}
			vals = append(vals, v)
		}
		for i, np := range s.exprs {
			if err := setPath(fields, np.path, vals[i]); err != nil {
				return false, fmt.Errorf("%s.set.%s: %w", s.path, np.name, err)
			}
		}
		r.Schema = nil // the codec's schema no longer describes the fields
	case kindDrop:
		fields, err := act.fields(s.path, ".drop")
		if err != nil {
			return false, err
		}
		for _, f := range s.fields {
			deletePath(fields, f.parts)
		}
		r.Schema = nil
	case kindRename:
		fields, err := act.fields(s.path, ".rename")
		if err != nil {
			return false, err
		}
		for _, rn := range s.renames {
			v, ok := getPath(fields, rn[0].parts)
			if !ok {
				continue
			}
			deletePath(fields, rn[0].parts)
			if err := setPath(fields, rn[1].parts, v); err != nil {
				return false, fmt.Errorf("%s.rename.%s: %w", s.path, rn[0].name, err)
			}
		}
		r.Schema = nil
	case kindMask:
		fields, err := act.fields(s.path, ".mask")
		if err != nil {
			return false, err
		}
		for _, m := range s.masks {
			v, ok := getPath(fields, m.parts)
			if !ok || v == nil {
				continue
			}
			if err := setPath(fields, m.parts, mask(v, m.method)); err != nil {
				return false, fmt.Errorf("%s.mask.%s: %w", s.path, m.name, err)
			}
		}
		r.Schema = nil
	}
	return true, nil
}

// evalBool evaluates a filter or a route's when; path+what names it in
// errors (joined only then: this runs on every record).
func evalBool(e *compiledExpr, act *activation, path, what string) (bool, error) {
	if v, ok := e.evalNative(act); ok && v.kind == nativeBool {
		return v.boolean(), nil
	}
	out, _, err := e.program.Eval(act)
	if err != nil {
		return false, fmt.Errorf("%s%s: %w", path, what, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%s%s: gave %s, not a bool", path, what, out.Type().TypeName())
	}
	return bool(b), nil
}

func (s *step) setsHeader(name string) bool {
	for _, np := range s.exprs {
		if np.name == name {
			return true
		}
	}
	return false
}

func mask(v any, method string) any {
	if method == MaskRedact {
		return "***"
	}
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		b = []byte(fmt.Sprint(v))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// activation resolves an expression's variables from the record, lazily:
// a filter on the topic builds nothing per record. Activations are pooled:
// CEL takes one as an interface, so one made per record would be an
// allocation per record.
type activation struct {
	rec *connector.Record
	raw *rawRecord // the JSON fast path's value, in place of rec's

	schema  string
	headers map[string]string // built on first use; reset when a step sets headers
}

var activations = sync.Pool{New: func() any { return new(activation) }}

func newActivation(r *connector.Record) *activation {
	a := activations.Get().(*activation)
	a.rec = r
	if r.Schema != nil {
		a.schema = r.Schema.Name
	}
	return a
}

// release returns a to the pool; nothing of the record stays reachable.
func (a *activation) release() {
	*a = activation{}
	activations.Put(a)
}

func (a *activation) ResolveName(name string) (any, bool) {
	r := a.rec
	switch name {
	case "value":
		if a.raw != nil {
			return a.raw, true
		}
		if r.Fields != nil {
			return r.Fields, true
		}
		return r.Value, true
	case "key":
		switch {
		case r.KeyFields != nil:
			return r.KeyFields, true
		case r.Key == nil:
			return nil, true
		}
		return string(r.Key), true
	case "headers":
		if a.headers == nil {
			a.headers = make(map[string]string, len(r.Headers))
			for _, h := range r.Headers {
				a.headers[h.Key] = string(h.Value)
			}
		}
		return a.headers, true
	case "topic":
		return r.Topic, true
	case "partition":
		return int64(r.Partition), true
	case "offset":
		return r.Offset, true
	case "timestamp":
		return r.Timestamp, true
	case "schema":
		return a.schema, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// fields returns the record's decoded value, which the field steps change
// in place.
func (a *activation) fields(path, what string) (map[string]any, error) {
	if a.rec.Fields == nil {
		return nil, fmt.Errorf("%s%s: the value is not a record (format.value must be json or avro-confluent)", path, what)
	}
	return a.rec.Fields, nil
}

// native turns a CEL result into the values codecs produce in Fields. Lists
// and maps are copied: a field set from another must not share its map.
func native(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		return float64(v), nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Timestamp:
		return v.Time, nil
	case types.Duration:
		return v.Duration, nil
	case traits.Mapper:
		out := map[string]any{}
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			ev, err := native(v.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = ev
		}
		return out, nil
	case traits.Lister:
		n, _ := v.Size().(types.Int)
		out := make([]any, 0, int(n))
		it := v.Iterator()
		for it.HasNext() == types.True {
			ev, err := native(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		return out, nil
	case *types.Err:
		return nil, v
	}
	return nil, fmt.Errorf("cannot store a %s", v.Type().TypeName())
}

// toBytes turns a key or header expression's result into bytes.
func toBytes(v ref.Val) ([]byte, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.String:
		return []byte(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case types.Uint:
		return strconv.AppendUint(nil, uint64(v), 10), nil
	case types.Double:
		return strconv.AppendFloat(nil, float64(v), 'g', -1, 64), nil
	case types.Bool:
		return strconv.AppendBool(nil, bool(v)), nil
	}
	return nil, fmt.Errorf("gave %s; want a string, bytes, a number or null", v.Type().TypeName())
}

func getPath(m map[string]any, parts []string) (any, bool) {
	for i, p := range parts {
		v, ok := m[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// setPath sets a (nested) field, creating the records on its way.
func setPath(m map[string]any, parts []string, v any) error {
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p]
		if !ok || next == nil {
			nm := map[string]any{}
			m[p] = nm
			m = nm
			continue
		}
		if m, ok = next.(map[string]any); !ok {
			return fmt.Errorf("field %s is a %T, not a record", joinParts(parts[:i+1]), next)
		}
	}
	m[parts[len(parts)-1]] = v
	return nil
}

func deletePath(m map[string]any, parts []string) {
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, parts[len(parts)-1])
}

func joinParts(parts []string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += "." + p
	}
	return s
}
