package transform

import (
	"unsafe"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Boxing a types.String or types.Double into an interface allocates a
// copy of it (runtime.convTstring, convT64): on the JSON fast path that
// was most of the allocations an expression's field reads made. These
// helpers make interfaces that point at a value the caller placed,
// relying, as internal/codec's avro_box.go does, on the layout of an
// interface (a type or itab word, then a data pointer) and on the rule
// that a value is never written again while an interface points at it.

// iface is the layout of an interface value, empty or not.
type iface struct {
	tab  unsafe.Pointer
	data unsafe.Pointer
}

func anyTypeWord(v any) unsafe.Pointer        { return (*iface)(unsafe.Pointer(&v)).tab }
func refValTypeWord(v ref.Val) unsafe.Pointer { return (*iface)(unsafe.Pointer(&v)).tab }

var (
	stringAnyWord    = anyTypeWord(types.String(""))
	doubleAnyWord    = anyTypeWord(types.Double(0))
	intAnyWord       = anyTypeWord(types.Int(0))
	stringRefValWord = refValTypeWord(types.String(""))
)

// boxString is p as a ref.Val, without a copy of *p.
func boxString(p *types.String) (v ref.Val) {
	e := (*iface)(unsafe.Pointer(&v))
	e.tab, e.data = stringRefValWord, unsafe.Pointer(p)
	return v
}

func boxAny(typ unsafe.Pointer, data unsafe.Pointer) (v any) {
	e := (*iface)(unsafe.Pointer(&v))
	e.tab, e.data = typ, data
	return v
}

// fieldSlab holds the strings and doubles that a record's field reads
// gave expressions (rawRecord.FindStringKey). It is reused from record to
// record: everything an expression made of a record is used up (written
// into the new value, or turned into an error message, a key's or a
// header's bytes) before its rawRecord is released, so no interface
// points into the slab when reset empties it. A full slice is replaced,
// never grown in place, so a slot is written once per record.
type fieldSlab struct {
	strings []types.String
	words   []uint64 // types.Double and types.Int
}

func (s *fieldSlab) boxString(v string) any {
	if len(s.strings) == cap(s.strings) {
		s.strings = make([]types.String, 0, max(8, 2*cap(s.strings)))
	}
	s.strings = append(s.strings, types.String(v))
	return boxAny(stringAnyWord, unsafe.Pointer(&s.strings[len(s.strings)-1]))
}

func (s *fieldSlab) word(bits uint64) unsafe.Pointer {
	if len(s.words) == cap(s.words) {
		s.words = make([]uint64, 0, max(8, 2*cap(s.words)))
	}
	s.words = append(s.words, bits)
	return unsafe.Pointer(&s.words[len(s.words)-1])
}

func (s *fieldSlab) boxDouble(v types.Double) any {
	return boxAny(doubleAnyWord, s.word(*(*uint64)(unsafe.Pointer(&v))))
}

func (s *fieldSlab) boxInt(v types.Int) any {
	if v >= 0 && v < 256 {
		return v // the runtime boxes small values without allocating
	}
	return boxAny(intAnyWord, s.word(uint64(v)))
}

// reset empties the slab, keeping its slices for the next record (see
// rawRecord.release).
func (s *fieldSlab) reset() {
	s.strings, s.words = s.strings[:0], s.words[:0]
}
