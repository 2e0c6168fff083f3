package codec

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/connector"
)

// fuzzSchemas are what the fuzz targets decode with: every type (the
// golden all_types schema), a recursive one, an evolved pair resolved
// through a reader schema, and collections of zero-width items.
func fuzzSchemas(tb testing.TB) (writers []avro.Schema, readers []avro.Schema) {
	tb.Helper()
	var allTypes string
	for _, gc := range loadGolden(tb) {
		if gc.Case == "all_types" {
			allTypes = gc.Schemas[0].Schema
		}
	}
	pairs := [][2]string{
		{allTypes, allTypes},
		{`{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"]}]}`, ""},
		{customerVersions[1], customerVersions[3]},
		{`{"type":"record","name":"Z","fields":[{"name":"a","type":{"type":"array","items":"null"}},
			{"name":"m","type":{"type":"map","values":{"type":"record","name":"E","fields":[]}}},
			{"name":"f","type":{"type":"fixed","name":"F0","size":0}}]}`, ""},
		{`{"type":"array","items":{"type":"map","values":["null","string","bytes",{"type":"bytes","logicalType":"decimal","precision":30,"scale":5}]}}`, ""},
	}
	for _, p := range pairs {
		w, err := parseSchema(p[0], nil)
		if err != nil {
			tb.Fatal(err)
		}
		r := w
		if p[1] != "" {
			if r, err = parseSchema(p[1], nil); err != nil {
				tb.Fatal(err)
			}
		}
		writers, readers = append(writers, w), append(readers, r)
	}
	return writers, readers
}

// FuzzAvroDecode feeds arbitrary bytes to compiled decoders: they must
// return a value or an error, never panic; what decodes must re-encode and
// decode to the same value.
func FuzzAvroDecode(f *testing.F) {
	writers, readers := fuzzSchemas(f)
	decoders := make([]*valueDecoder, len(writers))
	encoders := make([]*valueEncoder, len(writers))
	again := make([]*valueDecoder, len(writers))
	for i := range writers {
		var err error
		if decoders[i], err = compileDecoder(writers[i], readers[i]); err != nil {
			f.Fatal(err)
		}
		if encoders[i], err = compileEncoder(readers[i]); err != nil {
			f.Fatal(err)
		}
		if again[i], err = compileDecoder(readers[i], readers[i]); err != nil {
			f.Fatal(err)
		}
	}
	for _, gc := range loadGolden(f) {
		if gc.Case == "all_types" {
			for _, r := range gc.Records {
				b, _ := hex.DecodeString(r.Hex)
				f.Add(uint8(0), b[5:])
			}
		}
	}
	f.Add(uint8(1), []byte{2, 2, 4, 2, 6, 0})
	f.Add(uint8(2), []byte{2, 6, 'A', 'd', 'a', 0})
	f.Add(uint8(3), []byte{0x80, 0x80, 0x80, 0x80, 0x10, 0})
	f.Add(uint8(4), []byte{2, 2, 2, 'k', 6, 4, 0x01, 0x00, 0})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		i := int(which) % len(decoders)
		r := &avroReader{}
		r.reset(body)
		v := decoders[i].decode(r)
		if r.err != nil {
			if r.result() == nil || v != nil {
				t.Fatalf("failed decode returned %v, error %v", v, r.result())
			}
			return
		}
		w := &avroWriter{}
		if err := encoders[i].encode(w, v, lenient); err != nil {
			t.Fatalf("decoded %#v but cannot encode it back: %v", v, err)
		}
		r2 := &avroReader{}
		r2.reset(w.buf)
		v2 := again[i].decode(r2)
		if r2.err != nil || r2.remaining() != 0 {
			t.Fatalf("re-encoded %x does not decode: %v", w.buf, r2.result())
		}
		if !sameValue(v, v2) {
			t.Fatalf("round trip changed %#v into %#v", v, v2)
		}
	})
}

// FuzzDecodeWireFormat feeds arbitrary Kafka values to the avro-confluent
// decoder behind a registry: every outcome is a value or a RecordError
// (no schema id here is unreachable, so nothing is transient), never a
// panic.
func FuzzDecodeWireFormat(f *testing.F) {
	schemas := map[int]string{}
	for _, gc := range loadGolden(f) {
		for _, s := range gc.Schemas {
			schemas[s.ID] = s.Schema
		}
		for _, r := range gc.Records {
			b, _ := hex.DecodeString(r.Hex)
			f.Add(b)
		}
	}
	fake := fakeRegistry(f, schemas)
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte{0, 0, 0, 0, 99, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, value []byte) {
		rec := &connector.Record{Value: value}
		err := dec.Decode(context.Background(), rec)
		if err != nil && reasonOf(err) == "" {
			t.Fatalf("Decode(%x) = %v: not a RecordError", value, err)
		}
		if err == nil && len(value) > 0 && rec.Fields == nil {
			t.Fatalf("Decode(%x) succeeded without Fields", value)
		}
	})
}
