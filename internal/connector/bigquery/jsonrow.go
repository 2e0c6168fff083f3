package bigquery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"
	"unicode/utf8"
	"unsafe"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluice-dev/sluice/internal/coerce"
	"github.com/sluice-dev/sluice/internal/connector"
)

// JSON straight into proto rows.
//
// With json values and no transforms, routes or timestamp field
// (Options.JSON), the sink takes records undecoded and writes each member
// of the object as protobuf wire bytes for its column while it reads the
// bytes (jsonRow): no map per record, no boxed values, no dynamic proto
// message. Columns are found as the map path finds them (rowPlan.column)
// and values converted by the same functions (coerce, scalar), so a row is
// the map path's row (TestJSONDirectMatchesTheMapPath, FuzzJSONDirect).
//
// The direct path writes only what it knows the map path writes the same
// way. Anything else makes it give up on the record (errJSONMisfit): a
// member without a column (the table must grow a column for it), a value
// its column does not take, a key twice (or two keys for one column), a
// null in an array, bad JSON. The sink then decodes that record and hands
// it to the map path (Sink.encode), so its row, its error (with the
// record and field named, for on_error) and the columns it adds are the
// map path's. The map path also takes: the first batch of a table (its
// columns are inferred from decoded values), and every record when the
// table template reads .Value.

// errJSONMisfit: the direct path cannot write this record; decode it.
var errJSONMisfit = errors.New("the JSON value is left to the map path")

// encodeJSON encodes rec's JSON value into the arena as a row of plan
// (see rowArena.encodeVisited).
func (a *rowArena) encodeJSON(s *Sink, plan *rowPlan, rec *connector.Record, left int) ([]byte, error) {
	start := a.reserve(rec, left)
	buf, ok := appendJSONRow(a.buf, plan, rec.Value)
	if !ok {
		return nil, errJSONMisfit
	}
	return a.finish(s, plan, rec, buf, start)
}

// appendJSONRow appends the members of data, one JSON object with only
// whitespace around it, as the wire bytes of a row of plan; false: the
// map path must write it.
func appendJSONRow(buf []byte, plan *rowPlan, data []byte) ([]byte, bool) {
	j := jsonRow{data: data, buf: buf}
	j.skipSpace()
	if j.peek() != '{' || !j.object(plan) {
		return nil, false
	}
	j.skipSpace()
	if j.pos != len(data) {
		return nil, false
	}
	return j.buf, true
}

// isJSONNull reports whether a value is the JSON null, which decodes to
// no fields (a tombstone, to the map path).
func isJSONNull(v []byte) bool {
	return string(bytes.Trim(v, " \t\r\n")) == "null"
}

// jsonRow reads one JSON document and appends wire bytes to buf. Strings
// without escapes are read in place (unsafe.String over data, which the
// record keeps unchanged while its row is encoded; the row copies them).
type jsonRow struct {
	data []byte
	pos  int
	buf  []byte
}

func (j *jsonRow) peek() byte {
	if j.pos < len(j.data) {
		return j.data[j.pos]
	}
	return 0
}

func (j *jsonRow) skipSpace() {
	for j.pos < len(j.data) {
		switch j.data[j.pos] {
		case ' ', '\t', '\n', '\r':
			j.pos++
		default:
			return
		}
	}
}

// object reads the object at pos into the fields of p. Every column is
// written at most once: a second member for one (a repeated key, or two
// spellings of one column) is the map's to settle.
func (j *jsonRow) object(p *rowPlan) bool {
	var small [2]uint64
	seen := small[:]
	if n := (len(p.cols) + 63) / 64; n > len(small) {
		seen = make([]uint64, n)
	}
	next := 0 // members mostly come in column order
	if j.empty('}') {
		return true
	}
	for {
		key, ok := j.key()
		if !ok {
			return false
		}
		var c *colPlan
		if next < len(p.cols) && p.cols[next].name == key {
			c = p.cols[next]
		} else {
			c = p.column(key)
		}
		if j.peek() == 'n' {
			// A null is no value (the map path skips it), but it still
			// claims its column: {"a":1,"a":null} is null to a map.
			if !j.literal("null") {
				return false
			}
		} else if c == nil || !j.value(c) {
			return false
		}
		if c != nil {
			bit := uint64(1) << (c.index % 64)
			if seen[c.index/64]&bit != 0 {
				return false
			}
			seen[c.index/64] |= bit
			next = c.index + 1
		}
		if more, ok := j.after('}'); !more {
			return ok
		}
	}
}

// empty moves past the opening bracket at pos and reports whether close
// follows it (and moves past that too).
func (j *jsonRow) empty(close byte) bool {
	j.pos++
	j.skipSpace()
	if j.peek() == close {
		j.pos++
		return true
	}
	return false
}

// key reads a member's key and its colon.
func (j *jsonRow) key() (string, bool) {
	j.skipSpace()
	if j.peek() != '"' {
		return "", false
	}
	key, ok := j.str()
	if !ok {
		return "", false
	}
	j.skipSpace()
	if j.peek() != ':' {
		return "", false
	}
	j.pos++
	j.skipSpace()
	return key, true
}

// after reads what follows a member or element: more (a comma), the
// close bracket (ok), or anything else (not ok).
func (j *jsonRow) after(close byte) (more, ok bool) {
	j.skipSpace()
	switch j.peek() {
	case ',':
		j.pos++
		return true, true
	case close:
		j.pos++
		return false, true
	}
	return false, false
}

// value writes the value at pos (not null) as column c: one field, or one
// per element of an array for a REPEATED column.
func (j *jsonRow) value(c *colPlan) bool {
	if !c.repeated {
		return j.one(c)
	}
	if j.peek() != '[' { // an object for a REPEATED RECORD is an Avro map's
		return false
	}
	if j.empty(']') {
		return true
	}
	for {
		j.skipSpace()
		if j.peek() == 'n' || !j.one(c) { // a null element fits no REPEATED column
			return false
		}
		if more, ok := j.after(']'); !more {
			return ok
		}
	}
}

// one writes one value (not null) as one field of c.
func (j *jsonRow) one(c *colPlan) bool {
	num := c.fd.Number()
	if c.sub != nil {
		if j.peek() != '{' {
			return false
		}
		j.buf = protowire.AppendTag(j.buf, num, protowire.BytesType)
		start := len(j.buf)
		if !j.object(c.sub) {
			return false
		}
		j.buf = insertLength(j.buf, start)
		return true
	}
	if c.typ == bq.JSONFieldType {
		return j.jsonColumn(c)
	}
	switch b := j.peek(); {
	case b == '"':
		s, ok := j.str()
		if !ok {
			return false
		}
		if c.typ == bq.StringFieldType || c.typ == bq.GeographyFieldType {
			j.buf = protowire.AppendTag(j.buf, num, protowire.BytesType)
			j.buf = protowire.AppendString(j.buf, s)
			return true
		}
		return j.scalar(c, s)
	case b == 't' || b == 'f':
		v := b == 't'
		if !j.literal(strconv.FormatBool(v)) {
			return false
		}
		if c.typ == bq.BooleanFieldType {
			j.buf = protowire.AppendTag(j.buf, num, protowire.VarintType)
			j.buf = protowire.AppendVarint(j.buf, protowire.EncodeBool(v))
			return true
		}
		return j.scalar(c, v)
	case b == '-' || b >= '0' && b <= '9':
		text, ok := j.number()
		if !ok {
			return false
		}
		n := json.Number(text)
		switch c.typ {
		case bq.StringFieldType, bq.GeographyFieldType:
			j.buf = protowire.AppendTag(j.buf, num, protowire.BytesType)
			j.buf = protowire.AppendString(j.buf, text)
			return true
		case bq.IntegerFieldType, bq.TimestampFieldType:
			i, ok := coerce.Int(n)
			if !ok {
				return false
			}
			j.buf = protowire.AppendTag(j.buf, num, protowire.VarintType)
			j.buf = protowire.AppendVarint(j.buf, uint64(i))
			return true
		case bq.FloatFieldType:
			f, ok := coerce.Float(n)
			if !ok {
				return false
			}
			j.buf = protowire.AppendTag(j.buf, num, protowire.Fixed64Type)
			j.buf = protowire.AppendFixed64(j.buf, math.Float64bits(f))
			return true
		}
		return j.scalar(c, n)
	}
	return false // an object or array for a scalar column, or bad JSON
}

// scalar writes v through scalar, for the pairs of value and column type
// one does not write itself.
func (j *jsonRow) scalar(c *colPlan, v any) bool {
	val, err := scalar(c.typ, v)
	if err != nil {
		return false
	}
	j.buf, err = c.appendScalar(j.buf, val, "")
	return err == nil
}

// jsonColumn writes the value at pos as a JSON column: decoded as the
// codec decodes it (encoding/json with UseNumber gives the same values),
// then written by scalar as the map path writes it.
func (j *jsonRow) jsonColumn(c *colPlan) bool {
	v, ok := j.decode()
	return ok && v != nil && j.scalar(c, v)
}

// str reads the string at pos. Without escapes or invalid UTF-8 it is
// data itself; otherwise encoding/json unquotes it (the codec unquotes as
// it does, invalid UTF-8 becoming U+FFFD).
func (j *jsonRow) str() (string, bool) {
	j.pos++ // '"'
	start := j.pos
	plain, ascii := true, true
	for j.pos < len(j.data) {
		switch b := j.data[j.pos]; {
		case b == '"':
			raw := j.data[start:j.pos]
			j.pos++
			if plain && (ascii || utf8.Valid(raw)) {
				if len(raw) == 0 {
					return "", true
				}
				return unsafe.String(&raw[0], len(raw)), true
			}
			var s string
			if err := json.Unmarshal(j.data[start-1:j.pos], &s); err != nil {
				return "", false
			}
			return s, true
		case b == '\\':
			plain = false
			j.pos += 2
		case b < 0x20:
			return "", false
		case b >= utf8.RuneSelf:
			ascii = false
			j.pos++
		default:
			j.pos++
		}
	}
	return "", false
}

// number reads the number at pos, checked against JSON's grammar.
func (j *jsonRow) number() (string, bool) {
	start := j.pos
	if j.peek() == '-' {
		j.pos++
	}
	switch b := j.peek(); {
	case b == '0':
		j.pos++
	case b >= '1' && b <= '9':
		j.digits()
	default:
		return "", false
	}
	if j.peek() == '.' {
		j.pos++
		if !j.digits() {
			return "", false
		}
	}
	if b := j.peek(); b == 'e' || b == 'E' {
		j.pos++
		if b := j.peek(); b == '+' || b == '-' {
			j.pos++
		}
		if !j.digits() {
			return "", false
		}
	}
	raw := j.data[start:j.pos]
	return unsafe.String(&raw[0], len(raw)), true
}

// digits reads one or more digits; false: none.
func (j *jsonRow) digits() bool {
	start := j.pos
	for j.pos < len(j.data) && j.data[j.pos] >= '0' && j.data[j.pos] <= '9' {
		j.pos++
	}
	return j.pos > start
}

func (j *jsonRow) literal(word string) bool {
	if !bytes.HasPrefix(j.data[j.pos:], []byte(word)) {
		return false
	}
	j.pos += len(word)
	return true
}

// insertLength turns the message written from start in buf into a
// length-delimited field's payload, its length before it.
func insertLength(buf []byte, start int) []byte {
	n := len(buf) - start
	k := protowire.SizeVarint(uint64(n))
	buf = append(buf, make([]byte, k)...)
	copy(buf[start+k:], buf[start:start+n])
	protowire.AppendVarint(buf[start:start], uint64(n))
	return buf
}

// decodeJSON decodes rec for the map path (its value is not null: the
// router refused those).
func (s *Sink) decodeJSON(ctx context.Context, rec *connector.Record) error {
	if err := s.json.Decode(ctx, rec); err != nil {
		return err
	}
	if rec.Fields == nil {
		return noValue(rec)
	}
	return nil
}

// templateValueFields lists the top-level value fields a table template
// reads, when it reads the value only as .Value.name... (or
// $.Value.name...): the router then decodes only those members. false:
// it reads .Value some other way (whole, through index, a with or range
// over it, the dot passed on), and records are decoded whole.
func templateValueFields(text string) ([]string, bool) {
	t := parse.New("table")
	t.Mode = parse.SkipFuncCheck
	if _, err := t.Parse(text, "", "", map[string]*parse.Tree{}); err != nil {
		return nil, false
	}
	fields := make([]string, 0, 1) // non-nil: a template may read no field
	ok := true
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		if !ok || n == nil {
			return
		}
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, c := range x.Args {
				walk(c)
			}
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.ChainNode:
			walk(x.Node)
		case *parse.FieldNode:
			fields, ok = valueField(fields, x.Ident)
		case *parse.VariableNode:
			if len(x.Ident) > 1 {
				fields, ok = valueField(fields, x.Ident[1:])
			}
		case *parse.DotNode, *parse.TemplateNode, *parse.BreakNode, *parse.ContinueNode:
			ok = false // the whole record handed on, or control flow not followed
		}
	}
	walk(t.Root)
	return fields, ok
}

// valueField adds the field of a .Value.name chain; false: .Value alone.
func valueField(fields []string, ident []string) ([]string, bool) {
	if len(ident) == 0 || ident[0] != "Value" {
		return fields, true
	}
	if len(ident) < 2 {
		return fields, false
	}
	if !slices.Contains(fields, ident[1]) {
		fields = append(fields, ident[1])
	}
	return fields, true
}

// jsonMembers decodes the members of data's top-level object named in
// names (the last of a repeated key, as a map keeps), skipping the
// others, for a template to read. false: data is not an object; bad JSON
// elsewhere is the encoder's to find.
func jsonMembers(data []byte, names []string) (map[string]any, bool) {
	j := jsonRow{data: data}
	out := make(map[string]any, len(names))
	j.skipSpace()
	if j.peek() != '{' {
		return nil, false
	}
	if j.empty('}') {
		return out, true
	}
	for {
		key, ok := j.key()
		if !ok {
			return nil, false
		}
		if slices.Contains(names, key) {
			v, ok := j.decode()
			if !ok {
				return nil, false
			}
			out[strings.Clone(key)] = v
		} else if !j.skip() {
			return nil, false
		}
		more, ok := j.after('}')
		if !ok {
			return nil, false
		}
		if !more {
			return out, true
		}
	}
}

// decode decodes the value at pos as the codec does (encoding/json with
// UseNumber gives the same values).
func (j *jsonRow) decode() (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(j.data[j.pos:]))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	j.pos += int(dec.InputOffset())
	return v, true
}

// skip moves past the value at pos, checking only that its brackets
// close.
func (j *jsonRow) skip() bool {
	switch b := j.peek(); {
	case b == '"':
		_, ok := j.str()
		return ok
	case b == '{' || b == '[':
		depth := 0
		for j.pos < len(j.data) {
			switch j.data[j.pos] {
			case '"':
				if _, ok := j.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					j.pos++
					return true
				}
			}
			j.pos++
		}
		return false
	case b == 't':
		return j.literal("true")
	case b == 'f':
		return j.literal("false")
	case b == 'n':
		return j.literal("null")
	}
	_, ok := j.number()
	return ok
}
