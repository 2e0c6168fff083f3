package codec

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hamba/avro/v2"
)

// Decoders of Avro's primitive, fixed and enum types, with their logical
// types and the promotions schema resolution allows.

func intDecoder(lt avro.LogicalType) *valueDecoder {
	switch lt {
	case avro.Date:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any {
			return time.Unix(int64(r.readInt())*86400, 0).UTC()
		}}
	case avro.TimeMillis:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any {
			return time.Duration(r.readInt()) * time.Millisecond
		}}
	}
	return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxInt64(int64(r.readInt())) }}
}

func longDecoder(wt avro.Type, lt avro.LogicalType) *valueDecoder {
	read := func(r *avroReader) int64 { return r.readLong() }
	if wt == avro.Int {
		read = func(r *avroReader) int64 { return int64(r.readInt()) }
	}
	var decode func(r *avroReader) any
	switch lt {
	case avro.TimeMicros:
		decode = func(r *avroReader) any { return time.Duration(read(r)) * time.Microsecond }
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		decode = func(r *avroReader) any { return time.UnixMilli(read(r)).UTC() }
	case avro.TimestampMicros, avro.LocalTimestampMicros:
		decode = func(r *avroReader) any { return time.UnixMicro(read(r)).UTC() }
	default:
		if wt == avro.Int {
			decode = func(r *avroReader) any { return r.slab.boxInt64(read(r)) }
		} else {
			decode = func(r *avroReader) any { return r.slab.boxInt64(r.readLong()) }
		}
	}
	return &valueDecoder{width: 1, decode: decode}
}

func floatDecoder(wt avro.Type) *valueDecoder {
	switch wt {
	case avro.Int:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(float32(r.readInt()))) }}
	case avro.Long:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(float32(r.readLong()))) }}
	}
	return &valueDecoder{width: 4, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(r.readFloat())) }}
}

func doubleDecoder(wt avro.Type) *valueDecoder {
	switch wt {
	case avro.Int:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(r.readInt())) }}
	case avro.Long:
		return &valueDecoder{width: 1, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(r.readLong())) }}
	case avro.Float:
		return &valueDecoder{width: 4, decode: func(r *avroReader) any { return r.slab.boxFloat64(float64(r.readFloat())) }}
	}
	return &valueDecoder{width: 8, decode: func(r *avroReader) any { return r.slab.boxFloat64(r.readDouble()) }}
}

// decimalDecoder reads a two's-complement big-endian unscaled integer
// (length-prefixed bytes when size < 0, else fixed of size bytes) as an
// exact *big.Rat.
func decimalDecoder(dec *avro.DecimalLogicalSchema, size int) (*valueDecoder, error) {
	if dec.Scale() > maxDecimalScale || dec.Scale() < 0 {
		return nil, fmt.Errorf("decimal scale %d out of range [0, %d]", dec.Scale(), maxDecimalScale)
	}
	denom := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dec.Scale())), nil)
	small := dec.Scale() <= 18 // denom fits in an int64
	toRat := func(b []byte) any {
		if small && len(b) <= 8 {
			// Most decimals (prices, amounts) fit in 64 bits: no big.Int
			// to build, sign-extend the two's complement bytes instead.
			var v int64
			if len(b) > 0 && b[0]&0x80 != 0 {
				v = -1
			}
			for _, c := range b {
				v = v<<8 | int64(c)
			}
			return new(big.Rat).SetFrac64(v, denom.Int64())
		}
		n := new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		return new(big.Rat).SetFrac(n, denom)
	}
	if size < 0 {
		return &valueDecoder{width: 1, decode: func(r *avroReader) any {
			b := r.next(r.readLength("decimal"), "decimal")
			if r.err != nil {
				return nil
			}
			return toRat(b)
		}}, nil
	}
	return &valueDecoder{width: size, decode: func(r *avroReader) any {
		b := r.next(size, "fixed decimal")
		if r.err != nil {
			return nil
		}
		return toRat(b)
	}}, nil
}

func fixedDecoder(w, rd *avro.FixedSchema) (*valueDecoder, error) {
	if w.Size() != rd.Size() {
		return nil, fmt.Errorf("fixed %s has size %d, reader %s has %d", w.FullName(), w.Size(), rd.FullName(), rd.Size())
	}
	size := rd.Size()
	if dec, ok := rd.Logical().(*avro.DecimalLogicalSchema); ok {
		return decimalDecoder(dec, size)
	}
	return &valueDecoder{width: size, decode: func(r *avroReader) any {
		b := r.next(size, "fixed")
		if r.err != nil {
			return nil
		}
		return r.copyOf(b)
	}}, nil
}

func enumDecoder(w, rd *avro.EnumSchema) (*valueDecoder, error) {
	// symbols maps each writer symbol index to what the reader sees; ""
	// marks a symbol the reader lacks and has no default for.
	symbols := make([]string, len(w.Symbols()))
	for i, s := range w.Symbols() {
		for _, rs := range rd.Symbols() {
			if rs == s {
				symbols[i] = s
				break
			}
		}
		if symbols[i] == "" && rd.HasDefault() {
			symbols[i] = rd.Default()
		}
	}
	wsyms := w.Symbols()
	// Boxed once here, so decoding a symbol allocates nothing.
	boxed := make([]any, len(symbols))
	for i, s := range symbols {
		boxed[i] = s
	}
	return &valueDecoder{width: 1, decode: func(r *avroReader) any {
		i := r.readLong()
		if r.err != nil {
			return nil
		}
		if i < 0 || i >= int64(len(symbols)) {
			r.fail("enum index %d out of range [0, %d)", i, len(symbols))
			return nil
		}
		if symbols[i] == "" {
			r.fail("enum symbol %s is not in the reader schema", wsyms[i])
			return nil
		}
		return boxed[i]
	}}, nil
}
