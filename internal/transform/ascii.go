package transform

import (
	"unicode"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// The strings extension's upperAscii and lowerAscii convert every string
// to runes and back, and box the result: three allocations and a pass
// over runes for `value.country.upperAscii()` on every record. These
// declarations, placed after the extension in the environment, replace
// its implementations (same overload ids and signatures, so the type
// checker's choice and the runtime type guard are unchanged) with ones
// that give the same strings: an ASCII string is converted byte by byte
// into one allocation that also holds the boxed value, a string with
// nothing to change is returned as it is, and anything else (non-ASCII,
// invalid UTF-8, which the rune round trip turns into U+FFFD) goes the
// extension's way. TestASCIICaseMatchesTheStringsExtension holds them to
// it.
var asciiCaseFunctions = []cel.EnvOption{
	cel.Function("upperAscii", cel.MemberOverload("string_upper_ascii", []*cel.Type{cel.StringType}, cel.StringType,
		cel.UnaryBinding(func(v ref.Val) ref.Val { return asciiCase(v, "upperAscii", 'a', 'z', unicode.ToUpper) }))),
	cel.Function("lowerAscii", cel.MemberOverload("string_lower_ascii", []*cel.Type{cel.StringType}, cel.StringType,
		cel.UnaryBinding(func(v ref.Val) ref.Val { return asciiCase(v, "lowerAscii", 'A', 'Z', unicode.ToLower) }))),
}

// asciiCase maps the bytes from lo to hi (the letters to change) by
// adding or removing 'a'-'A'; conv is the rune mapping for other strings.
func asciiCase(v ref.Val, function string, lo, hi byte, conv func(rune) rune) ref.Val {
	str, ok := v.(types.String)
	if !ok {
		return decls.MaybeNoSuchOverload(function, v)
	}
	s := string(str)
	change, ascii := asciiCaseChange(s, lo, hi)
	switch {
	case !ascii:
		return types.String(runeCase(s, conv))
	case !change:
		return v
	}
	box, buf := newBoxedString(len(s))
	*box = types.String(asciiCaseInto(buf, s, lo, hi))
	return boxString(box)
}

// asciiCaseChange reports whether s is ASCII, and whether it has a byte
// from lo to hi.
func asciiCaseChange(s string, lo, hi byte) (change, ascii bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return false, false
		}
		change = change || c >= lo && c <= hi
	}
	return change, true
}

// asciiCaseInto writes the ASCII string s into buf (len(s) bytes, not
// written again) with the bytes from lo to hi changed, and gives it as a
// string; s is not empty.
func asciiCaseInto(buf []byte, s string, lo, hi byte) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= lo && c <= hi {
			c ^= 'a' - 'A'
		}
		buf[i] = c
	}
	return unsafe.String(&buf[0], len(buf))
}

// runeCase is the strings extension's upperASCII and lowerASCII.
func runeCase(s string, conv func(rune) rune) string {
	runes := []rune(s)
	for i, r := range runes {
		if r <= unicode.MaxASCII {
			runes[i] = conv(r)
		}
	}
	return string(runes)
}

// boxedString is a types.String and, for short strings, its bytes, in one
// allocation.
type boxedString struct {
	s   types.String
	buf [24]byte
}

// newBoxedString gives a place for a types.String and n bytes for its
// text, which the caller fills before boxing it; n > 0.
func newBoxedString(n int) (*types.String, []byte) {
	if n <= len(boxedString{}.buf) {
		b := new(boxedString)
		return &b.s, b.buf[:n]
	}
	return new(types.String), make([]byte, n)
}
