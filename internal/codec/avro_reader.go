package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Limits that keep hostile bytes from costing more than the bytes
// themselves. Every length and count read from the input is checked
// against what is left of the input before anything is allocated, so a
// 10-byte record cannot ask for a gigabyte. Only items that take no bytes
// at all (an array of nulls or of empty records) could still be multiplied
// without input; they get a fixed budget.
const (
	// maxZeroWidthItems is how many zero-byte array or map items one value
	// may hold in total.
	maxZeroWidthItems = 1 << 16
	// maxDepth bounds nesting (records, arrays, maps, unions), which only
	// recursive schemas can make deep.
	maxDepth = 512
)

// avroReader reads Avro binary from a byte slice. The first problem is kept
// in err, with the path of fields it happened in; reads after that return
// zero values, so decoders check err once per record or collection instead
// of after every primitive.
type avroReader struct {
	buf []byte
	pos int
	// str and bin are copies of buf made on the first string or bytes
	// value: every string and []byte of one value is a slice of one
	// allocation instead of one allocation each.
	str       string
	bin       []byte
	slab      valueSlab
	err       error
	path      []string // reversed: innermost first, filled while unwinding
	depth     int
	zeroItems int
	// members are the top-level fields VisitFields collects; kept (empty)
	// across records so that visiting allocates nothing for them.
	members []avroMember
}

type avroMember struct {
	name  string
	value any
}

func (r *avroReader) addMember(name string, v any) {
	r.members = append(r.members, avroMember{name, v})
}

// decodeError is a mismatch between the bytes and the schema.
type decodeError struct {
	path []string
	msg  string
}

func (e *decodeError) Error() string {
	if len(e.path) == 0 {
		return e.msg
	}
	p := ""
	for i := len(e.path) - 1; i >= 0; i-- {
		s := e.path[i]
		if p != "" && s[0] != '[' {
			p += "."
		}
		p += s
	}
	return fmt.Sprintf("at %s: %s", p, e.msg)
}

func (r *avroReader) reset(b []byte) {
	clear(r.members) // nothing decoded stays reachable from the pool
	members := r.members[:0]
	if cap(members) > 1024 {
		members = nil
	}
	*r = avroReader{buf: b, members: members}
}

func (r *avroReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// within records, on the way out of a failed decode, the name of the field
// or index it happened in.
func (r *avroReader) within(name string) {
	r.path = append(r.path, name)
}

// result is the decode outcome for the whole value.
func (r *avroReader) result() error {
	if r.err == nil {
		return nil
	}
	return &decodeError{path: r.path, msg: r.err.Error()}
}

func (r *avroReader) remaining() int { return len(r.buf) - r.pos }

func (r *avroReader) readLong() int64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.pos >= len(r.buf) {
			r.fail("unexpected end of data reading a varint")
			return 0
		}
		b := r.buf[r.pos]
		r.pos++
		if shift == 63 && b > 1 {
			r.fail("varint overflows 64 bits")
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return int64(v>>1) ^ -int64(v&1)
		}
	}
	r.fail("varint longer than 10 bytes")
	return 0
}

func (r *avroReader) readInt() int32 {
	v := r.readLong()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("int %d out of the 32-bit range", v)
		return 0
	}
	return int32(v)
}

func (r *avroReader) readBool() bool {
	if r.pos >= len(r.buf) {
		r.fail("unexpected end of data reading a boolean")
		return false
	}
	b := r.buf[r.pos]
	r.pos++
	if b > 1 {
		r.fail("boolean byte is %d, want 0 or 1", b)
	}
	return b == 1
}

func (r *avroReader) readFloat() float32 {
	if r.remaining() < 4 {
		r.fail("unexpected end of data reading a float")
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.pos:]))
	r.pos += 4
	return v
}

func (r *avroReader) readDouble() float64 {
	if r.remaining() < 8 {
		r.fail("unexpected end of data reading a double")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.pos:]))
	r.pos += 8
	return v
}

// next returns the next n bytes of the input, without copying.
func (r *avroReader) next(n int, what string) []byte {
	if n < 0 || n > r.remaining() {
		r.fail("%s length %d exceeds the %d bytes left", what, n, r.remaining())
		return nil
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b
}

func (r *avroReader) readLength(what string) int {
	n := r.readLong()
	if r.err != nil {
		return 0
	}
	if n < 0 || n > int64(r.remaining()) {
		r.fail("%s length %d exceeds the %d bytes left", what, n, r.remaining())
		return 0
	}
	return int(n)
}

// readBytes returns a copy (decoded values outlive the record's bytes),
// capped so that appending to it cannot overwrite its neighbours.
func (r *avroReader) readBytes() []byte {
	n := r.readLength("bytes")
	return r.copyOf(r.next(n, "bytes"))
}

func (r *avroReader) copyOf(b []byte) []byte {
	if b == nil {
		return nil
	}
	if r.bin == nil {
		r.bin = append([]byte(nil), r.buf...)
	}
	start := r.pos - len(b) // b is the input just read
	return r.bin[start : start+len(b) : start+len(b)]
}

func (r *avroReader) readString() string {
	n := r.readLength("string")
	start := r.pos
	b := r.next(n, "string")
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.fail("string is not valid UTF-8")
		return ""
	}
	if n == 0 {
		return ""
	}
	if r.str == "" {
		r.str = string(r.buf)
	}
	return r.str[start : start+n]
}

// readBlockCount reads the item count of the next array or map block (0
// ends the collection). minWidth is the least number of bytes one item
// takes: the count is refused when the input left cannot hold it.
func (r *avroReader) readBlockCount(minWidth int) int {
	n := r.readLong()
	if r.err != nil {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.fail("block count out of range")
			return 0
		}
		n = -n
		// A negative count is followed by the block's size in bytes, which
		// only readers that skip use.
		if size := r.readLong(); size < 0 || size > int64(r.remaining()) {
			r.fail("block size %d exceeds the %d bytes left", size, r.remaining())
			return 0
		}
	}
	if minWidth > 0 {
		if n > int64(r.remaining()/minWidth) {
			r.fail("block of %d items cannot fit in the %d bytes left", n, r.remaining())
			return 0
		}
		return int(n)
	}
	if n > int64(maxZeroWidthItems-r.zeroItems) {
		r.fail("more than %d items that take no bytes", maxZeroWidthItems)
		return 0
	}
	r.zeroItems += int(n)
	return int(n)
}

func (r *avroReader) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		r.fail("nesting deeper than %d levels", maxDepth)
		return false
	}
	return true
}

func (r *avroReader) leave() { r.depth-- }
