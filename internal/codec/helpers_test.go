package codec

import (
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluice-dev/sluice/internal/connector"
)

// fakeRegistry is srfake seeded with schemas by id.
func fakeRegistry(t testing.TB, schemas map[int]string) *srfake.Registry {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	for id, s := range schemas {
		fake.SeedSchema("subject-"+strconv.Itoa(id), 1, id, sr.Schema{Schema: s, Type: sr.TypeAvro})
	}
	return fake
}

// wire prefixes Avro body bytes with the Confluent header for id.
func wire(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

// avroBody encodes v with schema using this package's encoder.
func avroBody(t testing.TB, schema string, v any) []byte {
	t.Helper()
	s, err := parseSchema(schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := compileEncoder(s)
	if err != nil {
		t.Fatal(err)
	}
	w := &avroWriter{}
	if err := enc.encode(w, v, lenient); err != nil {
		t.Fatal(err)
	}
	return w.buf
}

func valueDecoderFor(t *testing.T, url string) *RecordDecoder {
	t.Helper()
	d, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: url, Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// reasonOf returns the RecordError reason of err, or "" when err is not a
// RecordError.
func reasonOf(err error) string {
	var re *connector.RecordError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// sameValue compares decoded values: like reflect.DeepEqual, but *big.Rat
// by value, times by instant and location, and NaN equal to NaN.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	case *big.Rat:
		y, ok := b.(*big.Rat)
		return ok && x.Cmp(y) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y) && x.Location() == y.Location()
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	}
	return a == b
}

func parseRat(s string) (*big.Rat, bool) { return new(big.Rat).SetString(s) }
