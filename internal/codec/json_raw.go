package codec

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// RawMember is one top-level member of a JSON object, where it is in the
// bytes that ScanJSONObject indexed.
type RawMember struct {
	// Key is the member's name, a string over the indexed bytes (a key
	// without escapes is its own text).
	Key string
	// KeyAt is the offset of the key's opening quote; Start and End bound
	// the value's bytes.
	KeyAt, Start, End int
	// Escaped: the value is a string with escapes.
	Escaped bool
}

// maxRawMembers and maxRawDepth bound what ScanJSONObject indexes; larger
// or deeper objects are left to the decoder (correct, only slower).
const (
	maxRawMembers = 64
	maxRawDepth   = 64
)

// ScanJSONObject indexes the top-level members of data, a JSON object,
// without decoding them, for callers that pass most members through as
// bytes (the transforms' JSON fast path). It checks the whole document
// and accepts only what the json decoder would decode to the same members
// with nothing lost: ok false means data is not valid JSON, not an object,
// has a key with escapes, a repeated key, invalid UTF-8, more than 64
// members or deeper nesting than 64 — the caller then decodes data, which
// reports bad input with the decoder's error. Keys point into data, which
// must not change while they are used.
func ScanJSONObject(data []byte, members []RawMember) (_ []RawMember, ok bool) {
	s := rawScanner{data: data}
	members = members[:0]
	s.skipSpace()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return members, false
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(data) && data[s.pos] == '}' {
		s.pos++
	} else {
		for {
			if s.pos >= len(data) || data[s.pos] != '"' || len(members) == maxRawMembers {
				return members, false
			}
			keyAt := s.pos
			escaped, ok := s.str()
			if !ok || escaped {
				return members, false
			}
			key := unsafe.String(&data[keyAt+1], s.pos-keyAt-2)
			for i := range members {
				if members[i].Key == key {
					return members, false
				}
			}
			s.skipSpace()
			if s.pos >= len(data) || data[s.pos] != ':' {
				return members, false
			}
			s.pos++
			s.skipSpace()
			start := s.pos
			escaped, ok = s.value(1)
			if !ok {
				return members, false
			}
			members = append(members, RawMember{Key: key, KeyAt: keyAt, Start: start, End: s.pos, Escaped: escaped})
			s.skipSpace()
			if s.pos < len(data) && data[s.pos] == ',' {
				s.pos++
				s.skipSpace()
				continue
			}
			if s.pos < len(data) && data[s.pos] == '}' {
				s.pos++
				break
			}
			return members, false
		}
	}
	s.skipSpace()
	if s.pos != len(data) {
		return members, false
	}
	return members, true
}

// rawScanner checks JSON without building values. It accepts a subset of
// what jsonParser accepts (FuzzScanJSONObject holds it to that).
type rawScanner struct {
	data []byte
	pos  int
}

func (s *rawScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
			continue
		}
		return
	}
}

// value checks one value from its first byte; escaped reports a string
// with escapes.
func (s *rawScanner) value(depth int) (escaped, ok bool) {
	if s.pos >= len(s.data) {
		return false, false
	}
	switch c := s.data[s.pos]; c {
	case '"':
		return s.str()
	case '{', '[':
		return false, s.container(c, depth+1)
	case 't':
		return false, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return false, s.literal("null")
	}
	return false, s.number()
}

func (s *rawScanner) container(open byte, depth int) bool {
	if depth > maxRawDepth {
		return false
	}
	end := byte('}')
	if open == '[' {
		end = ']'
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == end {
		s.pos++
		return true
	}
	for {
		if open == '{' {
			if s.pos >= len(s.data) || s.data[s.pos] != '"' {
				return false
			}
			if _, ok := s.str(); !ok {
				return false
			}
			s.skipSpace()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return false
			}
			s.pos++
			s.skipSpace()
		}
		if _, ok := s.value(depth); !ok {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
			continue
		case end:
			s.pos++
			return true
		}
		return false
	}
}

// str checks a string from its opening quote: control characters are
// refused, escapes must be JSON's, and the text valid UTF-8.
func (s *rawScanner) str() (escaped, ok bool) {
	start := s.pos + 1
	ascii := true
	for i := start; i < len(s.data); i++ {
		c := s.data[i]
		if !strSpecial[c] {
			continue
		}
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(s.data[start:i]) {
				return false, false
			}
			s.pos = i + 1
			return escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(s.data) {
				return false, false
			}
			switch s.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.data) {
					return false, false
				}
				for _, h := range s.data[i+1 : i+5] {
					if !isHex(h) {
						return false, false
					}
				}
				i += 4
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		default:
			ascii = false
		}
	}
	return false, false
}

// strSpecial marks the bytes a string scan must look at: the quote, the
// backslash, control characters and non-ASCII.
var strSpecial = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *rawScanner) literal(word string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return false
	}
	s.pos += len(word)
	return true
}

// number checks JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *rawScanner) number() bool {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return false
	}
	digits := func() bool {
		n := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > n
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.pos = i
	return true
}

// RawMemberValue is the value of m, as the json decoder gives it in
// Fields: a string, json.Number, bool, nil, map[string]any or []any.
// Strings without escapes and numbers point into data.
func RawMemberValue(data []byte, m *RawMember) any {
	if text, isString, ok := RawMemberText(data, m); ok {
		if isString {
			return text
		}
		return json.Number(text)
	}
	raw := data[m.Start:m.End]
	switch raw[0] {
	case 't':
		return true
	case 'f':
		return false
	case 'n':
		return nil
	}
	p := jsonParsers.Get().(*jsonParser)
	p.data, p.text = raw, string(raw)
	v, err := p.value()
	p.reset()
	jsonParsers.Put(p)
	if err != nil {
		// ScanJSONObject checked it: the scanner and the parser disagree.
		panic("codec: a scanned JSON value does not parse: " + err.Error())
	}
	return v
}

// RawMemberText is the text of m's value when it is a string without
// escapes (isString) or a number; ok false for any other value.
func RawMemberText(data []byte, m *RawMember) (text string, isString, ok bool) {
	raw := data[m.Start:m.End]
	switch c := raw[0]; {
	case c == '"' && !m.Escaped:
		if len(raw) == 2 {
			return "", true, true
		}
		return unsafe.String(&raw[1], len(raw)-2), true, true
	case c == '-' || c >= '0' && c <= '9':
		return unsafe.String(&raw[0], len(raw)), false, true
	}
	return "", false, false
}

// AppendRawMembers appends the members whose bit in gone is clear (bit
// i: members[i]; ScanJSONObject indexes at most 64), comma-separated, as
// `"key":value`, and reports whether it wrote any. Strings without
// escapes, numbers and literals are copied, neighbours with nothing
// between them in one go; other values are decoded and written again as
// the JSON encoder writes them, so they come out as a decoded record's
// would (compact, a repeated nested key once).
func AppendRawMembers(buf *bytes.Buffer, data []byte, members []RawMember, gone uint64) (wrote bool) {
	for i := 0; i < len(members); i++ {
		if gone&(1<<i) != 0 {
			continue
		}
		if wrote {
			buf.WriteByte(',')
		}
		wrote = true
		m := &members[i]
		if !m.verbatim(data) {
			buf.Write(data[m.KeyAt : m.KeyAt+len(m.Key)+2])
			buf.WriteByte(':')
			// Decoded values always encode: they hold no NaN, no time.
			_ = writeJSONValue(buf, RawMemberValue(data, m), nil)
			continue
		}
		// A run of verbatim members, each right after the last's comma.
		end := m.End
		for i+1 < len(members) && gone&(1<<(i+1)) == 0 && members[i+1].KeyAt == end+1 && members[i+1].verbatim(data) {
			i++
			end = members[i].End
		}
		buf.Write(data[m.KeyAt:end])
	}
	return wrote
}

// verbatim reports whether m's bytes, from its key to the end of its
// value, are what the encoder would write: a string without escapes, a
// number or a literal, with no whitespace around the colon.
func (m *RawMember) verbatim(data []byte) bool {
	c := data[m.Start]
	return !m.Escaped && c != '{' && c != '[' && m.Start == m.KeyAt+len(m.Key)+3
}

// AppendJSONValue appends v written as the JSON encoder writes a
// schemaless field's value.
func AppendJSONValue(buf *bytes.Buffer, v any) error { return writeJSONValue(buf, v, nil) }

// AppendJSONName appends `"name":`, quoted as the encoder quotes keys.
func AppendJSONName(buf *bytes.Buffer, name string) {
	writeJSONString(buf, name)
	buf.WriteByte(':')
}

// AppendJSONString appends s quoted as the encoder writes a string field.
func AppendJSONString(buf *bytes.Buffer, s string) { writeJSONString(buf, s) }
