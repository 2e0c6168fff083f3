package bigquery

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sluice-dev/sluice/internal/coerce"
)

// scalar converts a decoded value (JSON: json.Number, string, bool, maps,
// slices; Avro: int64, float64, string, bool, []byte, time.Time,
// time.Duration, *big.Rat) to the proto value of a column type, in the
// Storage Write API's encodings: TIMESTAMP as microseconds since the
// epoch, DATE as days, TIME and DATETIME packed as in BigQuery's
// CivilTimeEncoder, NUMERIC and BIGNUMERIC as little-endian two's
// complement integers scaled by 10^9 and 10^38.
//
// JSON numbers for TIMESTAMP are microseconds and for DATE days since the
// epoch, as Google's JSON stream writer reads them; strings are parsed
// (RFC 3339, 2006-01-02, 15:04:05.999999). Range checks (years 1-9999,
// NUMERIC's 29 integer digits) are BigQuery's to make, as row errors.
func scalar(typ bq.FieldType, v any) (protoreflect.Value, error) {
	switch typ {
	case bq.StringFieldType, bq.GeographyFieldType:
		if s, ok := text(v); ok {
			return protoreflect.ValueOfString(s), nil
		}
	case bq.JSONFieldType:
		b, err := json.Marshal(jsonValue(v))
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%s cannot be written as JSON: %w", describe(v), err)
		}
		return protoreflect.ValueOfString(string(b)), nil
	case bq.BytesFieldType:
		switch x := v.(type) {
		case []byte:
			return protoreflect.ValueOfBytes(x), nil
		case string:
			return protoreflect.ValueOfBytes([]byte(x)), nil
		}
	case bq.BooleanFieldType:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
	case bq.IntegerFieldType:
		if n, ok := coerce.Int(v); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case bq.FloatFieldType:
		if f, ok := coerce.Float(v); ok {
			return protoreflect.ValueOfFloat64(f), nil
		}
	case bq.NumericFieldType, bq.BigNumericFieldType:
		if r, ok := rational(v); ok {
			scale := 9
			if typ == bq.BigNumericFieldType {
				scale = 38
			}
			return protoreflect.ValueOfBytes(decimalBytes(r, scale)), nil
		}
	case bq.TimestampFieldType:
		switch x := v.(type) {
		case time.Time:
			return protoreflect.ValueOfInt64(x.UnixMicro()), nil
		case string:
			t, err := parseTime(x, timestampLayouts)
			if err != nil {
				return protoreflect.Value{}, err
			}
			return protoreflect.ValueOfInt64(t.UnixMicro()), nil
		}
		if n, ok := coerce.Int(v); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case bq.DateFieldType:
		var days int64
		switch x := v.(type) {
		case time.Time:
			days = coerce.EpochDays(x)
		case string:
			t, err := parseTime(x, []string{time.DateOnly})
			if err != nil {
				return protoreflect.Value{}, err
			}
			days = coerce.EpochDays(t)
		default:
			n, ok := coerce.Int(v)
			if !ok {
				return protoreflect.Value{}, mismatch(v, typ)
			}
			days = n
		}
		if days < math.MinInt32 || days > math.MaxInt32 {
			return protoreflect.Value{}, fmt.Errorf("DATE %d days from the epoch is out of range", days)
		}
		return protoreflect.ValueOfInt32(int32(days)), nil
	case bq.TimeFieldType:
		switch x := v.(type) {
		case time.Duration:
			if x < 0 || x >= 24*time.Hour {
				return protoreflect.Value{}, fmt.Errorf("TIME %v is not a time of day", x)
			}
			return protoreflect.ValueOfInt64(packTime(time.Time{}.Add(x))), nil
		case string:
			t, err := parseTime(x, []string{"15:04:05.999999999", "15:04"})
			if err != nil {
				return protoreflect.Value{}, err
			}
			return protoreflect.ValueOfInt64(packTime(t)), nil
		}
	case bq.DateTimeFieldType:
		switch x := v.(type) {
		case time.Time:
			return protoreflect.ValueOfInt64(packDatetime(x.UTC())), nil
		case string:
			t, err := parseTime(x, []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", time.DateOnly})
			if err != nil {
				return protoreflect.Value{}, err
			}
			return protoreflect.ValueOfInt64(packDatetime(t)), nil
		}
	}
	return protoreflect.Value{}, mismatch(v, typ)
}

func mismatch(v any, typ bq.FieldType) error {
	return fmt.Errorf("%s does not fit a %s column", describe(v), typ)
}

// describe names a value for an error: its type and a short rendering.
func describe(v any) string {
	switch x := v.(type) {
	case json.Number:
		return "the number " + clip(string(x), 40)
	case string:
		return fmt.Sprintf("the string %q", clip(x, 40))
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case []byte:
		return fmt.Sprintf("%d bytes", len(x))
	case *big.Rat:
		return "the decimal " + x.FloatString(9)
	}
	return fmt.Sprintf("the %T %v", v, clip(fmt.Sprint(v), 40))
}

func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case *big.Rat:
		return ratString(x), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	}
	return coerce.NumberText(v)
}

// rational reads a float64 as its exact binary value (NUMERIC rounds it to
// its scale) and a string with spaces around it.
func rational(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case string:
		v = strings.TrimSpace(x)
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	}
	return coerce.Decimal(v)
}

// decimalBytes is r scaled by 10^scale, rounded half away from zero, as a
// little-endian two's-complement integer.
func decimalBytes(r *big.Rat, scale int) []byte {
	if b, ok := decimalBytesSmall(r, scale); ok {
		return b
	}
	return decimalBytesBig(r, scale)
}

func decimalBytesBig(r *big.Rat, scale int) []byte {
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	num, den := scaled.Num(), scaled.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	// Two's complement, big-endian, with room for the sign bit.
	n := q.BitLen()/8 + 1
	be := make([]byte, n)
	if q.Sign() >= 0 {
		q.FillBytes(be)
	} else {
		t := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*n)), q)
		t.FillBytes(be)
	}
	for i, j := 0, len(be)-1; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

// ratString writes r exactly when it is a finite decimal, else with 38
// fractional digits.
func ratString(r *big.Rat) string {
	for digits := 0; digits <= 38; digits++ {
		s := r.FloatString(digits)
		if back, ok := new(big.Rat).SetString(s); ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(38)
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	time.DateOnly,
}

func parseTime(s string, layouts []string) (time.Time, error) {
	if t, ok := coerce.Time(strings.TrimSpace(s), layouts); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("the string %q is not a date or time BigQuery reads", clip(s, 40))
}

func packTime(t time.Time) int64 {
	secs := int64(t.Hour())<<12 | int64(t.Minute())<<6 | int64(t.Second())
	return secs<<20 | int64(t.Nanosecond()/1000)
}

func packDatetime(t time.Time) int64 {
	secs := int64(t.Year())<<26 | int64(t.Month())<<22 | int64(t.Day())<<17 |
		int64(t.Hour())<<12 | int64(t.Minute())<<6 | int64(t.Second())
	return secs<<20 | int64(t.Nanosecond()/1000)
}

// jsonValue makes a decoded value marshal as the JSON a reader expects:
// decimals as numbers, times as RFC 3339, durations as times of day,
// bytes as base64.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case *big.Rat:
		return json.Number(ratString(x))
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case time.Duration:
		return time.Time{}.Add(x).Format("15:04:05.999999")
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return v
}
