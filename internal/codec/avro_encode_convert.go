package codec

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/coerce"
)

// Conversions from the Go values records hold to Avro's primitive and
// logical types (see encodeMode for how strict each is).

func intEncoder(t avro.Type, lt avro.LogicalType) *valueEncoder {
	name := string(t)
	if lt != "" {
		name += " (" + string(lt) + ")"
	}
	convert := func(v any, m encodeMode) (int64, bool) { return toInt(v, m) }
	switch lt {
	case avro.Date:
		convert = func(v any, m encodeMode) (int64, bool) {
			if tm, ok := toTime(v, m); ok {
				return coerce.EpochDays(tm), true
			}
			return toInt(v, m)
		}
	case avro.TimeMillis, avro.TimeMicros:
		unit := time.Millisecond
		if lt == avro.TimeMicros {
			unit = time.Microsecond
		}
		convert = func(v any, m encodeMode) (int64, bool) {
			if d, ok := v.(time.Duration); ok {
				return int64(d / unit), true
			}
			if m == strict {
				return 0, false
			}
			return toInt(v, m)
		}
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		convert = func(v any, m encodeMode) (int64, bool) {
			if tm, ok := toTime(v, m); ok {
				return tm.UnixMilli(), true
			}
			return toInt(v, m)
		}
	case avro.TimestampMicros, avro.LocalTimestampMicros:
		convert = func(v any, m encodeMode) (int64, bool) {
			if tm, ok := toTime(v, m); ok {
				return tm.UnixMicro(), true
			}
			return toInt(v, m)
		}
	}
	return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
		i, ok := convert(v, m)
		if !ok || t == avro.Int && (i < math.MinInt32 || i > math.MaxInt32) {
			return mismatch(m, v, name)
		}
		w.writeLong(i)
		return nil
	}}
}

func toInt(v any, m encodeMode) (int64, bool) {
	if m == strict {
		return coerce.ExactInt(v)
	}
	return coerce.Int(v)
}

func toFloat(v any, m encodeMode) (float64, bool) {
	if m == strict {
		switch x := v.(type) {
		case float64:
			return x, true
		case float32:
			return float64(x), true
		}
		return 0, false
	}
	return coerce.Float(v)
}

var rfc3339 = []string{time.RFC3339Nano}

func toTime(v any, m encodeMode) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		if m != strict {
			return coerce.Time(x, rfc3339)
		}
	}
	return time.Time{}, false
}

var byteType = reflect.TypeFor[byte]()

func toBytes(v any, m encodeMode) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case string:
		if m != strict {
			return []byte(x), true
		}
		return nil, false
	case nil:
		return nil, false
	}
	// [N]byte, as hamba gives fixed defaults.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem() == byteType {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b, true
	}
	return nil, false
}

// decimalEncoder writes an exact decimal as a two's-complement big-endian
// unscaled integer: length-prefixed bytes when size < 0, else sign-extended
// to size bytes. A value with more fractional digits than the scale is
// refused rather than rounded.
func decimalEncoder(dec *avro.DecimalLogicalSchema, size int) *valueEncoder {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(0, min(dec.Scale(), maxDecimalScale)))), nil)
	name := fmt.Sprintf("decimal(%d,%d)", dec.Precision(), dec.Scale())
	return &valueEncoder{func(w *avroWriter, v any, m encodeMode) error {
		r, ok := toRat(v, m)
		if !ok {
			return mismatch(m, v, name)
		}
		n := new(big.Rat).Mul(r, new(big.Rat).SetInt(scale))
		if !n.IsInt() {
			return mismatch(m, v, name+": more fractional digits than the scale")
		}
		b := twosComplement(n.Num())
		if size < 0 {
			w.writeBytes(b)
			return nil
		}
		if len(b) > size {
			return mismatch(m, v, name+": does not fit the fixed size")
		}
		pad := byte(0)
		if n.Sign() < 0 {
			pad = 0xff
		}
		for range size - len(b) {
			w.buf = append(w.buf, pad)
		}
		w.buf = append(w.buf, b...)
		return nil
	}}
}

func toRat(v any, m encodeMode) (*big.Rat, bool) {
	if m == strict {
		switch x := v.(type) {
		case *big.Rat:
			return x, x != nil
		case big.Rat:
			return &x, true
		}
		return nil, false
	}
	return coerce.Decimal(v)
}

// twosComplement returns the shortest big-endian two's-complement form of n.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n-1 in bytes, inverted, is n in two's complement.
	abs := new(big.Int).Neg(n)
	abs.Sub(abs, big.NewInt(1))
	b := abs.Bytes()
	for i := range b {
		b[i] = ^b[i]
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}
