package codec

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sluice-dev/sluice/internal/connector"
)

// maxJSONDepth is how deeply objects and arrays may nest: encoding/json's
// limit, so both accept the same documents.
const maxJSONDepth = 10000

// decodeJSONObject decodes data, one JSON object (or null, which gives a
// nil map) with nothing but whitespace after it, into the values
// encoding/json gives with UseNumber: json.Number, string, bool, nil,
// map[string]any and []any (empty containers are empty, not nil). It
// accepts exactly what encoding/json accepts, coerces invalid UTF-8 in
// strings to U+FFFD the same way, keeps the last of duplicate keys, and
// rejects nesting deeper than maxJSONDepth (FuzzJSONMatchesStdlib holds it
// to that).
//
// It is the hot path of every JSON pipeline, hence hand-written: it reads
// the bytes once, without reflection, sizes each map once, takes strings
// without escapes and numbers as substrings of a single copy of data
// (which they keep alive, as the record keeps data), and boxes them from
// a valueSlab (avro_box.go) rather than one allocation each.
func decodeJSONObject(data []byte) (map[string]any, error) {
	p := jsonParsers.Get().(*jsonParser)
	p.data, p.text = data, string(data)
	m, err := p.top()
	p.reset()
	jsonParsers.Put(p)
	return m, err
}

// VisitJSONValue parses rec.Value exactly as the json value decoder does
// (same values, same errors), but instead of building the object's map it
// calls visit with each top-level member in document order, once the whole
// value is known to be valid. A repeated key is visited again (the last
// is the one a map keeps). A null value (a tombstone) or a JSON null
// visits nothing; an empty (0-byte) value is bad input.
// Bad input is the *connector.RecordError the decoder would return.
//
// Sinks that turn objects into rows (SQL) use it to skip the map.
func VisitJSONValue(rec *connector.Record, visit func(key string, value any)) error {
	if rec.Value == nil {
		return nil
	}
	p := jsonParsers.Get().(*jsonParser)
	p.data, p.text = rec.Value, string(rec.Value)
	p.keepTop = true
	_, err := p.top()
	if err == nil {
		for _, kv := range p.members {
			visit(kv.key, kv.value)
		}
	}
	p.keepTop = false
	p.reset()
	jsonParsers.Put(p)
	if err != nil {
		return recordError(rec, "value", jsonBadInput(err))
	}
	return nil
}

func jsonBadInput(err error) *badInput {
	return &badInput{"json", fmt.Errorf("decoding JSON: %w", err)}
}

var jsonParsers = sync.Pool{New: func() any { return &jsonParser{} }}

// jsonParser is a recursive-descent parser over one document. members and
// items are stacks of the open objects' members and arrays' elements,
// reused across documents, so a container is allocated once at its final
// size.
type jsonParser struct {
	data    []byte
	text    string // data as a string
	pos     int
	depth   int
	members []jsonMember
	items   []any
	buf     []byte // strings with escapes or invalid UTF-8
	slab    valueSlab
	// keepTop leaves the top-level object's members in members instead of
	// building its map (VisitJSONValue).
	keepTop bool
}

// jsonNumberTypeWord boxes a json.Number (a string underneath) from the
// strings of a valueSlab, as avro_box.go explains.
var jsonNumberTypeWord = typeWord(json.Number(""))

func (p *jsonParser) boxNumber(text string) any {
	v := p.slab.boxString(text)
	return boxPointer(jsonNumberTypeWord, (*eface)(unsafe.Pointer(&v)).data)
}

type jsonMember struct {
	key   string
	value any
}

func (p *jsonParser) reset() {
	clear(p.members) // nothing decoded stays reachable from the pool
	clear(p.items)
	p.data, p.text, p.pos, p.depth = nil, "", 0, 0
	p.slab = valueSlab{} // the values of the next document get their own
	p.members, p.items = p.members[:0], p.items[:0]
	if cap(p.members) > 4096 || cap(p.items) > 4096 || cap(p.buf) > 64<<10 {
		p.members, p.items, p.buf = nil, nil, nil // one huge document
	}
}

func (p *jsonParser) top() (map[string]any, error) {
	p.skipSpace()
	var m map[string]any
	switch {
	case p.pos == len(p.data):
		return nil, p.fail("looking for beginning of value")
	case p.data[p.pos] == '{':
		var err error
		if m, err = p.object(); err != nil {
			return nil, err
		}
	case p.data[p.pos] == 'n':
		if err := p.literal("null"); err != nil {
			return nil, err
		}
	default:
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the value is a JSON %s, not an object", jsonKind(v))
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, fmt.Errorf("trailing data after the object at offset %d", p.pos)
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	}
	return "value"
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// fail reports the byte at p.pos as unexpected (context says what was
// expected), in encoding/json's words, or the end of the input.
func (p *jsonParser) fail(context string) error {
	if p.pos >= len(p.data) {
		return fmt.Errorf("unexpected end of JSON input")
	}
	c := p.data[p.pos]
	var q string
	switch c {
	case '\'':
		q = `'\''`
	case '"':
		q = `'"'`
	default:
		q = strconv.Quote(string(c))
		q = "'" + q[1:len(q)-1] + "'"
	}
	return fmt.Errorf("invalid character %s %s at offset %d", q, context, p.pos)
}

func (p *jsonParser) value() (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail("")
	}
	switch c := p.data[p.pos]; c {
	case '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.slab.boxString(s), nil
	case '{':
		m, err := p.object()
		if err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a, err := p.array()
		if err != nil {
			return nil, err
		}
		return a, nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return p.number()
		}
		return nil, p.fail("looking for beginning of value")
	}
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return fmt.Errorf("exceeded max depth (%d) at offset %d", maxJSONDepth, p.pos)
	}
	p.pos++ // the opening bracket
	p.skipSpace()
	return nil
}

// object parses from its '{'.
func (p *jsonParser) object() (map[string]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	base := len(p.members)
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return map[string]any{}, nil
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("looking for beginning of object key string")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("after object key")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, jsonMember{key, v})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			p.skipSpace()
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			break
		}
		return nil, p.fail("after object key:value pair")
	}
	if p.keepTop && p.depth == 1 {
		p.depth--
		return nil, nil
	}
	members := p.members[base:]
	m := make(map[string]any, len(members))
	for _, kv := range members {
		m[kv.key] = kv.value // the last of duplicate keys wins
	}
	clear(members)
	p.members = p.members[:base]
	p.depth--
	return m, nil
}

// array parses from its '['.
func (p *jsonParser) array() ([]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	base := len(p.items)
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return []any{}, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.items = append(p.items, v)
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			p.skipSpace()
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			break
		}
		return nil, p.fail("after array element")
	}
	items := p.items[base:]
	a := make([]any, len(items))
	copy(a, items)
	clear(items)
	p.items = p.items[:base]
	p.depth--
	return a, nil
}

func (p *jsonParser) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if p.pos >= len(p.data) || p.data[p.pos] != word[i] {
			return p.fail("in literal " + word + " (expecting " + strconv.QuoteRune(rune(word[i])) + ")")
		}
		p.pos++
	}
	return nil
}

// number checks JSON's number grammar and returns the text as is.
func (p *jsonParser) number() (any, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && p.data[p.pos] >= '1' && p.data[p.pos] <= '9':
		p.digits()
	default:
		return nil, p.fail("in numeric literal")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if !p.digits() {
			return nil, p.fail("after decimal point in numeric literal")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return nil, p.fail("in exponent of numeric literal")
		}
	}
	return p.boxNumber(p.text[start:p.pos]), nil
}

// digits skips [0-9]* and reports whether there was one.
func (p *jsonParser) digits() bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// plainByte is true for the bytes a string holds as they are: printable
// ASCII but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str parses a string from its opening quote. Without escapes or invalid
// UTF-8 the result is a substring of p.text.
func (p *jsonParser) str() (string, error) {
	start := p.pos + 1
	i := start
	// Eight bytes at a time while none needs a look.
	for i+8 <= len(p.data) && !hasSpecialByte(binary.LittleEndian.Uint64(p.data[i:])) {
		i += 8
	}
	for i < len(p.data) {
		c := p.data[i]
		if plainByte[c] {
			i++
			continue
		}
		if c == '"' {
			p.pos = i + 1
			return p.text[start:i], nil
		}
		if c < utf8.RuneSelf {
			break // an escape or a control character
		}
		r, size := utf8.DecodeRune(p.data[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	return p.strSlow(start, i)
}

// hasSpecialByte reports whether a byte of w is not plainByte: a quote,
// a backslash, below 0x20 or from 0x80. (The bit tricks are exact for
// "is there any": a false hit can only follow a true one.)
func hasSpecialByte(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below20 := w - ones*0x20
	quote := w ^ ones*'"'
	backslash := w ^ ones*'\\'
	return (below20|(quote-ones)&^quote|(backslash-ones)&^backslash|w)&highs != 0
}

// strSlow continues a string at i, where it first needs more than a copy,
// and unquotes it the way encoding/json does: an unpaired surrogate escape
// and each byte of invalid UTF-8 become U+FFFD.
func (p *jsonParser) strSlow(start, i int) (string, error) {
	data := p.data
	b := append(p.buf[:0], data[start:i]...)
	defer func() { p.buf = b[:0] }()
	for {
		if i >= len(data) {
			p.pos = i
			return "", p.fail("")
		}
		c := data[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return string(b), nil
		case c == '\\':
			if i+1 >= len(data) {
				p.pos = i + 1
				return "", p.fail("")
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := p.hex4(i + 2)
				if err != nil {
					return "", err
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// encoding/json takes the next escape only when it
					// completes the pair; it is read again otherwise.
					next := rune(-1)
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						next = hexRune(data[i+2:])
					}
					if pair := utf16.DecodeRune(r, next); pair != unicode.ReplacementChar {
						r = pair
						i += 6
					} else {
						r = unicode.ReplacementChar
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				p.pos = i + 1
				return "", p.fail("in string escape code")
			}
			i += 2
		case c < ' ':
			p.pos = i
			return "", p.fail("in string literal")
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, data[i:i+size]...)
			}
			i += size
		}
	}
}

// hex4 reads the 4 hex digits of a \u escape at i; on error p.pos is the
// offending byte.
func (p *jsonParser) hex4(i int) (rune, error) {
	if r := hexRune(p.data[min(i, len(p.data)):]); r >= 0 {
		return r, nil
	}
	for p.pos = i; p.pos < len(p.data) && hexDigit(p.data[p.pos]) >= 0; p.pos++ {
	}
	return -1, p.fail("in \\u hexadecimal character escape")
}

// hexRune is the value of 4 hex digits at the start of b, or -1.
func hexRune(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		d := hexDigit(c)
		if d < 0 {
			return -1
		}
		r = r<<4 | d
	}
	return r
}

func hexDigit(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}
