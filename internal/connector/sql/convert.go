package sql

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/coerce"
)

// convert turns a decoded value (JSON: json.Number, string, bool, maps,
// slices; Avro: int64, float64, string, bool, []byte, time.Time, *big.Rat,
// time.Duration, maps, slices) into the canonical Go value for column c,
// or says why it does not fit. nil stays nil (NULL). Canonical values are
// int64 (uint64 for large unsigned), float64, string (text, decimal, JSON,
// UUID), bool, []byte, time.Time, time.Duration (time of day); dialects
// adapt them further.
func convert(c *column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kindInt:
		return toInt(c, v)
	case kindFloat:
		return toFloat(c, v)
	case kindDecimal:
		return toDecimal(c, v)
	case kindBool:
		return toBool(v)
	case kindBytes:
		return toBytes(c, v)
	case kindTimestamp, kindTimestampTZ:
		return toTimestamp(v)
	case kindDate:
		return toDate(v)
	case kindTime:
		return toTimeOfDay(v)
	case kindJSON:
		return toJSON(v)
	case kindUUID:
		return toUUID(v)
	case kindAny:
		return toAny(v)
	default:
		return toText(c, v)
	}
}

// numberText returns the decimal text of a numeric value; a decimal
// (*big.Rat) with at most 18 fractional digits.
func numberText(v any) (string, bool) {
	if n, ok := v.(*big.Rat); ok {
		if n.IsInt() {
			return n.Num().String(), true
		}
		return strings.TrimRight(strings.TrimRight(n.FloatString(18), "0"), "."), true
	}
	return coerce.NumberText(v)
}

func toInt(c *column, v any) (any, error) {
	var s string
	switch n := v.(type) {
	case bool:
		if n {
			return int64(1), nil
		}
		return int64(0), nil
	case int64:
		if intFits(c, n) {
			return v, nil // already canonical: no new boxing
		}
		return intInRange(c, n)
	case int:
		return intInRange(c, int64(n))
	case int32:
		return intInRange(c, int64(n))
	case string:
		s = strings.TrimSpace(n)
	default:
		t, ok := numberText(v)
		if !ok {
			return nil, fmt.Errorf("%s is not an integer", describeValue(v))
		}
		s = t
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return intInRange(c, i)
	}
	// 1e3, 5.0 and integers beyond int64 (for unsigned bigint).
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.Contains(s, "/") {
		return nil, fmt.Errorf("%s is not an integer", describeValue(v))
	}
	if !r.IsInt() {
		return nil, fmt.Errorf("%s is not a whole number", describeValue(v))
	}
	return checkIntRange(c, r.Num())
}

// intInRange is the allocation-free check for the usual case.
func intInRange(c *column, n int64) (any, error) {
	if !intFits(c, n) {
		return checkIntRange(c, big.NewInt(n))
	}
	return n, nil
}

// intFits reports whether n fits c.
func intFits(c *column, n int64) bool {
	bits := c.bits
	if bits == 0 {
		bits = 64
	}
	switch {
	case c.unsigned && n < 0,
		c.unsigned && bits < 64 && n > 1<<bits-1,
		!c.unsigned && bits < 64 && (n > 1<<(bits-1)-1 || n < -(1<<(bits-1))):
		return false
	}
	return true
}

func checkIntRange(c *column, n *big.Int) (any, error) {
	bits := c.bits
	if bits == 0 {
		bits = 64
	}
	var lo, hi *big.Int
	if c.unsigned {
		lo = big.NewInt(0)
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits)), big.NewInt(1))
	} else {
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), big.NewInt(1))
		lo = new(big.Int).Neg(new(big.Int).Add(hi, big.NewInt(1)))
	}
	if n.Cmp(lo) < 0 || n.Cmp(hi) > 0 {
		return nil, fmt.Errorf("%s is out of range for %s (%s to %s)", n, c.describeType(), lo, hi)
	}
	if n.IsInt64() {
		return n.Int64(), nil
	}
	return n.Uint64(), nil
}

func toFloat(c *column, v any) (any, error) {
	var f float64
	switch n := v.(type) {
	case float64:
		if c.bits != 32 || math.IsInf(n, 0) || math.Abs(n) <= math.MaxFloat32 {
			return v, nil // already canonical: no new boxing
		}
		f = n
	case float32:
		f = float64(n)
	case string:
		p, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", describeValue(v))
		}
		f = p
	case *big.Rat:
		f, _ = n.Float64()
	default:
		t, ok := numberText(v)
		if !ok {
			return nil, fmt.Errorf("%s is not a number", describeValue(v))
		}
		p, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is out of range for %s", t, c.describeType())
		}
		f = p
	}
	if c.bits == 32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
		return nil, fmt.Errorf("%g is out of range for %s", f, c.describeType())
	}
	return f, nil
}

func toDecimal(c *column, v any) (any, error) {
	var s string
	switch n := v.(type) {
	case string:
		s = strings.TrimSpace(n)
	case *big.Rat:
		scale := c.scale
		if c.precision == 0 {
			scale = 18
		}
		var ok bool
		if s, ok = ratText(n, scale); !ok {
			s = n.FloatString(scale)
		}
	default:
		t, ok := numberText(v)
		if !ok {
			return nil, fmt.Errorf("%s is not a decimal number", describeValue(v))
		}
		s = t
	}
	intDigits, ok := plainDecimal(s)
	if !ok {
		// Exponents and the like: let big.Rat judge, then spell it plainly.
		r, ok := new(big.Rat).SetString(s)
		if !ok || strings.Contains(s, "/") {
			return nil, fmt.Errorf("%s is not a decimal number", describeValue(v))
		}
		s = r.FloatString(max(c.scale, 18))
		if c.precision == 0 || c.scale > 0 {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		intDigits, _ = plainDecimal(s)
	}
	// The database rounds extra fraction digits; too many integer digits
	// is an overflow.
	if c.precision > 0 && intDigits > c.precision-c.scale {
		return nil, fmt.Errorf("%s does not fit %s (at most %d digits before the point)", s, c.describeType(), c.precision-c.scale)
	}
	return s, nil
}

// ratText is r.FloatString(scale) without big arithmetic, for the common
// case (a decoded Avro decimal, a price) where r is exact at scale and its
// scaled value fits in 64 bits; ok is false otherwise.
func ratText(r *big.Rat, scale int) (string, bool) {
	if scale > 18 || !r.Num().IsInt64() || !r.Denom().IsUint64() {
		return "", false
	}
	p := uint64(1)
	for range scale {
		p *= 10
	}
	den := r.Denom().Uint64()
	if p%den != 0 {
		return "", false // not exact at scale: FloatString rounds
	}
	num := r.Num().Int64()
	neg := num < 0
	mag := uint64(num)
	if neg {
		mag = -mag
	}
	hi, unscaled := bits.Mul64(mag, p/den)
	if hi != 0 {
		return "", false
	}
	digits := strconv.AppendUint(make([]byte, 0, 24), unscaled, 10)
	if scale > 0 {
		if len(digits) <= scale {
			digits = append([]byte(strings.Repeat("0", scale+1-len(digits))), digits...)
		}
		point := len(digits) - scale
		digits = append(digits[:point], append([]byte{'.'}, digits[point:]...)...)
	}
	if neg {
		return "-" + string(digits), true
	}
	return string(digits), true
}

// plainDecimal reports whether s is [+-]digits[.digits] and how many
// significant digits it has before the point.
func plainDecimal(s string) (intDigits int, ok bool) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, seenDot, leading := 0, false, true
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9':
			digits++
			if !seenDot && !(leading && ch == '0') {
				leading = false
				intDigits++
			}
		case ch == '.' && !seenDot:
			seenDot = true
		default:
			return 0, false
		}
	}
	return intDigits, digits > 0
}

func toBool(v any) (any, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case json.Number:
		switch b {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case int, int64, int32:
		switch t, _ := numberText(b); t {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true", "t", "yes", "y", "on", "1":
			return true, nil
		case "false", "f", "no", "n", "off", "0":
			return false, nil
		}
	}
	return nil, fmt.Errorf("%s is not a boolean", describeValue(v))
}

func toBytes(c *column, v any) (any, error) {
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		return nil, fmt.Errorf("%s is not bytes", describeValue(v))
	}
	if c.length > 0 && len(b) > c.length {
		return nil, fmt.Errorf("%d bytes do not fit %s", len(b), c.describeType())
	}
	return b, nil
}

func toText(c *column, v any) (any, error) {
	var s string
	switch x := v.(type) {
	case string:
		if err := fitsText(c, x); err != nil {
			return nil, err
		}
		return v, nil // already canonical: no new boxing
	case bool:
		s = strconv.FormatBool(x)
	case []byte:
		if !utf8.Valid(x) {
			return nil, fmt.Errorf("bytes that are not UTF-8 text do not fit %s", c.describeType())
		}
		s = string(x)
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	case map[string]any, []any:
		j, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encoding as JSON text: %w", err)
		}
		s = string(j)
	default:
		t, ok := numberText(v)
		if !ok {
			t = fmt.Sprint(v)
		}
		s = t
	}
	if err := fitsText(c, s); err != nil {
		return nil, err
	}
	return s, nil
}

func fitsText(c *column, s string) error {
	if c.length > 0 && utf8.RuneCountInString(s) > c.length {
		return fmt.Errorf("a text of %d characters does not fit %s", utf8.RuneCountInString(s), c.describeType())
	}
	return nil
}

// toAny keeps a value's natural type, for columns without one (SQLite).
func toAny(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return string(x), nil
		}
		return f, nil
	case string, bool, []byte, int64, float64, time.Time:
		return x, nil
	case map[string]any, []any:
		return toJSON(x)
	default:
		if t, ok := numberText(v); ok {
			return t, nil
		}
		return fmt.Sprint(v), nil
	}
}

// describeValue quotes a value for an error message, shortened.
func describeValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	case json.Number:
		s = string(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case []byte:
		return fmt.Sprintf("%d bytes", len(x))
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
