package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// JSONEncoder writes rec.Fields as a JSON object: fields in rec.Schema's
// order when it is known (then any others sorted), *big.Rat as an exact
// JSON number, time.Time as RFC 3339 (a date field as "2006-01-02"),
// time.Duration as a time of day "15:04:05.000000" when under 24 h,
// []byte as base64. NaN and infinities are bad input. A record the
// transforms reshaped without decoding it is its Reshaped bytes. Nil
// Fields (a tombstone) encode to nil.
type JSONEncoder struct{}

func (JSONEncoder) Encode(_ context.Context, _ string, rec *connector.Record) ([]byte, error) {
	if rec.Reshaped != nil {
		return rec.Reshaped, nil
	}
	if rec.Fields == nil {
		return nil, nil
	}
	var fields []connector.Field
	if rec.Schema != nil {
		fields = rec.Schema.Fields
	}
	var buf bytes.Buffer
	buf.Grow(len(rec.Value) + 64) // about what a reshaped record takes
	var err error
	if len(fields) == 0 {
		err = writeJSONTopObject(&buf, rec.Fields)
	} else {
		err = writeJSONObject(&buf, rec.Fields, fields)
	}
	if err != nil {
		return nil, &connector.RecordError{Record: rec, Reason: "json-encode", Err: fmt.Errorf("encoding value as JSON: %w", err)}
	}
	return buf.Bytes(), nil
}

// keyOrder remembers the sorted keys of the last schemaless object a
// goroutine encoded. Records of one stream nearly always share their key
// set, so the next one is written in that order after a lookup per key,
// instead of a walk of the map and a sort.
type keyOrder struct {
	keys  []string // sorted; cloned, so they keep no record's bytes alive
	names [][]byte // each key written out: `"key":`, after a comma but for the first
	vals  []any    // scratch, cleared after use
}

var keyOrders = sync.Pool{New: func() any { return new(keyOrder) }}

// writeJSONTopObject writes m with its keys sorted, as writeJSONObject does
// without fields, reusing the key order of the previous record when m has
// the same keys.
func writeJSONTopObject(buf *bytes.Buffer, m map[string]any) error {
	ko := keyOrders.Get().(*keyOrder)
	defer keyOrders.Put(ko)
	if !ko.matches(m) {
		if len(m) > 256 {
			return writeJSONObject(buf, m, nil) // not worth remembering
		}
		ko.remember(m)
	}
	defer clear(ko.vals) // nothing encoded stays reachable from the pool
	buf.WriteByte('{')
	for i, k := range ko.keys {
		buf.Write(ko.names[i])
		if err := writeJSONValue(buf, ko.vals[i], nil); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// remember makes m's keys the remembered ones, with their values in vals.
func (ko *keyOrder) remember(m map[string]any) {
	ko.keys, ko.vals = ko.keys[:0], ko.vals[:0]
	for k := range m {
		ko.keys = append(ko.keys, strings.Clone(k))
	}
	slices.Sort(ko.keys)
	ko.names = ko.names[:0]
	var name bytes.Buffer
	for i, k := range ko.keys {
		ko.vals = append(ko.vals, m[k])
		name.Reset()
		if i > 0 {
			name.WriteByte(',')
		}
		writeJSONString(&name, k)
		name.WriteByte(':')
		ko.names = append(ko.names, bytes.Clone(name.Bytes()))
	}
}

// matches reports whether m has exactly the remembered keys, and if so
// leaves their values in vals.
func (ko *keyOrder) matches(m map[string]any) bool {
	if len(m) != len(ko.keys) || len(m) == 0 {
		return false
	}
	ko.vals = ko.vals[:0]
	for _, k := range ko.keys {
		v, ok := m[k]
		if !ok {
			return false
		}
		ko.vals = append(ko.vals, v)
	}
	return true
}

func writeJSONObject(buf *bytes.Buffer, m map[string]any, fields []connector.Field) error {
	buf.WriteByte('{')
	first := true
	var done map[string]bool
	if len(fields) > 0 {
		done = make(map[string]bool, len(fields))
	}
	write := func(k string, v any, f *connector.Field) error {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		writeJSONString(buf, k)
		buf.WriteByte(':')
		if err := writeJSONValue(buf, v, f); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	}
	for i := range fields {
		f := &fields[i]
		v, ok := m[f.Name]
		if !ok {
			continue
		}
		done[f.Name] = true
		if err := write(f.Name, v, f); err != nil {
			return err
		}
	}
	if len(done) < len(m) {
		keys := make([]string, 0, len(m)-len(done))
		for k := range m {
			if !done[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := write(k, m[k], nil); err != nil {
				return err
			}
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeJSONString writes s quoted as encoding/json does. Most strings
// need no escape and are copied as they are; the others go through
// json.Marshal (which also escapes <, > and &).
func writeJSONString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

// AppendJSONInt writes x as the encoder writes an int64 field.
func AppendJSONInt(buf *bytes.Buffer, x int64) {
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), x, 10))
}

// AppendJSONFloat writes x as the encoder writes a float64 field; NaN and
// infinities have no JSON form.
func AppendJSONFloat(buf *bytes.Buffer, x float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("%v has no JSON form", x)
	}
	buf.Write(strconv.AppendFloat(buf.AvailableBuffer(), x, 'g', -1, 64))
	return nil
}

// writeJSONValue writes v; f, when known, is its portable field.
func writeJSONValue(buf *bytes.Buffer, v any, f *connector.Field) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case string:
		writeJSONString(buf, x)
	case bool:
		buf.Write(strconv.AppendBool(buf.AvailableBuffer(), x))
	case int64:
		AppendJSONInt(buf, x)
	case int:
		AppendJSONInt(buf, int64(x))
	case float64:
		return AppendJSONFloat(buf, x)
	case json.Number:
		buf.WriteString(string(x))
	case *big.Rat:
		buf.WriteString(ratDecimal(x, f))
	case time.Time:
		if f != nil && f.Type == connector.TypeDate {
			writeJSONString(buf, x.Format(time.DateOnly))
		} else {
			writeJSONString(buf, x.Format(time.RFC3339Nano))
		}
	case time.Duration:
		writeJSONString(buf, timeOfDay(x))
	case map[string]any:
		var fields []connector.Field
		if f != nil {
			fields = f.Fields
		}
		return writeJSONObject(buf, x, fields)
	case []any:
		var items *connector.Field
		if f != nil {
			items = f.Items
		}
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONValue(buf, e, items); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		buf.WriteByte(']')
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// ratDecimal prints r exactly: with the field's scale when known, else
// with as many digits as it needs (a denominator that is not a product of
// 2s and 5s, which no decoded decimal has, gets 18).
func ratDecimal(r *big.Rat, f *connector.Field) string {
	if f != nil && f.Type == connector.TypeDecimal {
		return r.FloatString(f.Scale)
	}
	if r.IsInt() {
		return r.Num().String()
	}
	d := new(big.Int).Set(r.Denom())
	var twos, fives int
	two, five, zero, m := big.NewInt(2), big.NewInt(5), big.NewInt(0), new(big.Int)
	for ; m.Mod(d, two).Cmp(zero) == 0; twos++ {
		d.Quo(d, two)
	}
	for ; m.Mod(d, five).Cmp(zero) == 0; fives++ {
		d.Quo(d, five)
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return r.FloatString(18)
	}
	return r.FloatString(max(twos, fives))
}

// timeOfDay prints a time-of-day duration as "15:04:05.000000".
func timeOfDay(d time.Duration) string {
	if d < 0 || d >= 24*time.Hour {
		return d.String()
	}
	us := d.Microseconds()
	return fmt.Sprintf("%02d:%02d:%02d.%06d", us/3_600_000_000, us/60_000_000%60, us/1_000_000%60, us%1_000_000)
}
