// Package coerce converts the values decoders produce (JSON: json.Number,
// string, float64; Avro: Go integers, float64, *big.Rat, time.Time) to the
// integer, float, decimal, text or time that an encoder's type or a sink's
// column wants. It is shared by the Avro encoder, the BigQuery rows and the
// SQL columns so that they read numbers and times alike.
//
// Every function reports only whether a value converts: each caller words
// its own error, in the terms of its type or column.
package coerce

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"
)

// ExactInt converts Go's integer types, refusing unsigned values above
// math.MaxInt64. Floats and strings are not integers to it.
func ExactInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint:
		return int64(x), x <= math.MaxInt64
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// Int converts what ExactInt does, and whole floats and json.Numbers in
// int64's range (1e3 and 5.0 are integers; 5.5 is not).
func Int(v any) (int64, bool) {
	if i, ok := ExactInt(v); ok {
		return i, true
	}
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	case float32:
		return Int(float64(x))
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		if f, err := x.Float64(); err == nil {
			return Int(f)
		}
	}
	return 0, false
}

// Float converts floats, json.Numbers and whatever Int converts.
func Float(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	i, ok := Int(v)
	return float64(i), ok
}

// Decimal converts *big.Rat, json.Number, decimal strings ("12.50",
// "1e3"), Go integers, and finite float64s as the shortest decimal that
// reads back as the same float (0.1 is 1/10, not its binary expansion).
func Decimal(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case *big.Rat:
		return x, x != nil
	case big.Rat:
		return &x, true
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case string:
		return new(big.Rat).SetString(x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		return new(big.Rat).SetString(strconv.FormatFloat(x, 'f', -1, 64))
	}
	if i, ok := ExactInt(v); ok {
		return new(big.Rat).SetInt64(i), true
	}
	return nil, false
}

// NumberText returns the decimal text of a json.Number, a Go integer or a
// float (shortest form that reads back the same). Decimals (*big.Rat) are
// the caller's: how many digits to write is a property of its column.
func NumberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case int:
		return strconv.Itoa(n), true
	case int8:
		return strconv.FormatInt(int64(n), 10), true
	case int16:
		return strconv.FormatInt(int64(n), 10), true
	case int32:
		return strconv.FormatInt(int64(n), 10), true
	case int64:
		return strconv.FormatInt(n, 10), true
	case uint:
		return strconv.FormatUint(uint64(n), 10), true
	case uint8:
		return strconv.FormatUint(uint64(n), 10), true
	case uint16:
		return strconv.FormatUint(uint64(n), 10), true
	case uint32:
		return strconv.FormatUint(uint64(n), 10), true
	case uint64:
		return strconv.FormatUint(n, 10), true
	case float32:
		return strconv.FormatFloat(float64(n), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(n, 'g', -1, 64), true
	}
	return "", false
}

// Time parses s with the first of layouts that reads it. s is taken as it
// is: callers that allow spaces around a time trim them first.
func Time(s string, layouts []string) (time.Time, bool) {
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// EpochDays is the day of t counted from 1970-01-01 (a DATE), rounded
// down: the day before the epoch is -1.
func EpochDays(t time.Time) int64 {
	secs := t.Unix()
	days := secs / 86400
	if secs%86400 < 0 {
		days--
	}
	return days
}
