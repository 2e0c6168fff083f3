package codec

import "unsafe"

// Boxing a string, int64 or float64 into an `any` allocates a copy of it
// (runtime.convTstring, convT64): for a typical record that is most of its
// allocations. The decoder instead keeps the values of one record in a few
// slices and makes interfaces that point into them, one allocation per
// slice instead of one per value.
//
// This relies on the layout of an empty interface (a type word and a data
// pointer), which the Go runtime has kept since Go 1.0, and on the rule
// that the data an interface points to is never written again: a slot is
// written once, before it is boxed, and a full slice is replaced by a new
// one, never grown in place. The garbage collector keeps a slice alive as
// long as one interface points into it. A slab belongs to one decode: the
// reader starts each value with an empty one.

// eface is the layout of a value of type any.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringTypeWord  = typeWord("")
	int64TypeWord   = typeWord(int64(0))
	float64TypeWord = typeWord(float64(0))
)

func boxPointer(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// valueSlab holds the scalar values of one decoded record.
type valueSlab struct {
	strings []string
	words   []uint64 // int64 and float64 bits
}

func (s *valueSlab) boxString(v string) any {
	if cap(s.strings) == len(s.strings) {
		s.strings = make([]string, 0, max(8, 2*cap(s.strings)))
	}
	s.strings = append(s.strings, v)
	return boxPointer(stringTypeWord, unsafe.Pointer(&s.strings[len(s.strings)-1]))
}

func (s *valueSlab) word(bits uint64) unsafe.Pointer {
	if cap(s.words) == len(s.words) {
		s.words = make([]uint64, 0, max(8, 2*cap(s.words)))
	}
	s.words = append(s.words, bits)
	return unsafe.Pointer(&s.words[len(s.words)-1])
}

func (s *valueSlab) boxInt64(v int64) any {
	if v >= 0 && v < 256 {
		return v // the runtime boxes small values without allocating
	}
	return boxPointer(int64TypeWord, s.word(uint64(v)))
}

func (s *valueSlab) boxFloat64(v float64) any {
	return boxPointer(float64TypeWord, s.word(*(*uint64)(unsafe.Pointer(&v))))
}
