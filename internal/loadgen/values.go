package loadgen

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

const (
	FormatBytes = "bytes"
	FormatJSON  = "json"
)

// recordGenerator makes keys and values for one connection; it is not safe
// for concurrent use, so each producing goroutine owns one.
type recordGenerator struct {
	format string
	size   int
	keys   int64
	rnd    *rand.Rand
	// pool holds random bytes shared read-only by every generator; a
	// bytes value is a window into it, which costs no generation per
	// record and is incompressible, like the worst-case payload.
	pool []byte
	// avro makes the values of --format avro.
	avro *avroValues
}

func newRandomPool(size int, seed uint64) []byte {
	pool := make([]byte, max(1<<20, 4*size))
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range pool {
		pool[i] = byte(r.Uint32())
	}
	return pool
}

// key returns the key of the record with sequence number seq: keys cycle
// through exactly o.Keys values, so a run of at least that many records
// uses every one of them. nil when keys is 0.
func (g *recordGenerator) key(seq int64) []byte {
	if g.keys <= 0 {
		return nil
	}
	return strconv.AppendInt([]byte("key-"), seq%g.keys, 10)
}

func (g *recordGenerator) value(ctx context.Context, seq int64, key []byte, now time.Time) ([]byte, error) {
	switch g.format {
	case FormatJSON:
		return g.jsonValue(seq, key, now), nil
	case FormatAvro:
		return g.avro.encode(ctx, g.rnd, seq, now)
	}
	off := g.rnd.IntN(len(g.pool) - g.size + 1)
	return g.pool[off : off+g.size : off+g.size], nil
}

var (
	eventKinds = []string{"page_view", "add_to_cart", "purchase", "search", "login"}
	countries  = []string{"DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"}
)

// jsonValue writes a small event like a web shop's, padded with a "note"
// field to about size bytes (a value never shrinks below its fields).
func (g *recordGenerator) jsonValue(seq int64, key []byte, now time.Time) []byte {
	b := make([]byte, 0, max(g.size, 200))
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, seq, 10)
	if key != nil {
		b = append(b, `,"key":"`...)
		b = append(b, key...)
		b = append(b, '"')
	}
	b = append(b, `,"ts":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":"`...)
	b = append(b, eventKinds[g.rnd.IntN(len(eventKinds))]...)
	b = append(b, `","user_id":`...)
	b = strconv.AppendInt(b, int64(g.rnd.IntN(100000)), 10)
	b = append(b, `,"page":"/products/`...)
	b = strconv.AppendInt(b, int64(g.rnd.IntN(5000)), 10)
	b = append(b, `","amount":`...)
	b = strconv.AppendFloat(b, float64(g.rnd.IntN(100000))/100, 'f', 2, 64)
	b = append(b, `,"country":"`...)
	b = append(b, countries[g.rnd.IntN(len(countries))]...)
	b = append(b, '"')
	const noteField = `,"note":""}`
	if pad := g.size - len(b) - len(noteField); pad > 0 {
		b = append(b, `,"note":"`...)
		for range pad {
			b = append(b, 'a'+byte(g.rnd.IntN(26)))
		}
		b = append(b, '"')
	}
	return append(b, '}')
}
