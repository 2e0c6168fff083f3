package codec

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluice-dev/sluice/internal/connector"
)

func TestEncoderSubjectStrategies(t *testing.T) {
	ts := registryServer(t)
	cl, err := sr.NewClient(sr.URLs(ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strategy SubjectStrategy
		subject  string
	}{
		{"", "orders-value"},
		{SubjectTopic, "orders-value"},
		{SubjectRecord, "t.Person"},
		{SubjectTopicRecord, "orders-t.Person"},
	} {
		enc, err := NewEncoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}, SubjectStrategy: c.strategy}, personSchema)
		if err != nil {
			t.Fatal(err)
		}
		ae := enc.(*AvroConfluentEncoder)
		if got := ae.Subject("orders"); got != c.subject {
			t.Errorf("strategy %q: Subject = %q, want %q", c.strategy, got, c.subject)
		}
		for range 5 {
			if _, err := enc.Encode(context.Background(), "orders", &connector.Record{Fields: person}); err != nil {
				t.Fatal(err)
			}
		}
		if n := ae.RegistryLookups(); n != 1 {
			t.Errorf("strategy %q: %d registry calls for 5 records, want 1", c.strategy, n)
		}
		if _, err := cl.SchemaByVersion(context.Background(), c.subject, 1); err != nil {
			t.Errorf("strategy %q: subject %s not registered: %v", c.strategy, c.subject, err)
		}
	}
	if _, err := NewEncoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}, SubjectStrategy: SubjectRecord}, `"string"`); err == nil ||
		!strings.Contains(err.Error(), "format.subject_strategy") {
		t.Errorf("record strategy with a primitive schema = %v, want a subject_strategy error", err)
	}
}

func TestEncoderWithoutAutoRegisterLooksUpTheID(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	no := false
	opts := Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}, AutoRegister: &no}
	enc, err := NewEncoder(opts, personSchema)
	if err != nil {
		t.Fatal(err)
	}
	_, err = enc.Encode(context.Background(), "people", &connector.Record{Fields: person})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "people-value") {
		t.Fatalf("Encode before registration = %v, want a permanent error naming the subject", err)
	}
	id, _, err := fake.RegisterSchema("people-value", sr.Schema{Schema: personSchema})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ = NewEncoder(opts, personSchema)
	b, err := enc.Encode(context.Background(), "people", &connector.Record{Fields: person})
	if err != nil {
		t.Fatal(err)
	}
	if got := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4]); b[0] != 0 || got != id {
		t.Errorf("header = %x, want magic 0 and id %d", b[:5], id)
	}
}

func TestEncoderIncompatibleSchemaIsPermanent(t *testing.T) {
	ts := registryServer(t)
	opts := Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}}
	enc, _ := NewEncoder(opts, customerVersions[0])
	if _, err := enc.Encode(context.Background(), "c", &connector.Record{Fields: customerRecords[0]}); err != nil {
		t.Fatal(err)
	}
	incompatible := `{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"id","type":"int"},{"name":"required","type":"string"}]}`
	enc, _ = NewEncoder(opts, incompatible)
	_, err := enc.Encode(context.Background(), "c", &connector.Record{Fields: map[string]any{"id": 1, "required": "x"}})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("Encode with an incompatible schema = %v, want a permanent error saying incompatible", err)
	}
}

func TestEncodeBadFieldsIsARecordError(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	enc, err := NewEncoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}}, personSchema)
	if err != nil {
		t.Fatal(err)
	}
	for name, fields := range map[string]map[string]any{
		"wrong type":      {"name": 5, "age": 1, "tags": []any{}, "attrs": map[string]any{}, "kind": "A", "ok": true},
		"missing field":   {"age": 1, "tags": []any{}, "attrs": map[string]any{}, "kind": "A", "ok": true},
		"unknown symbol":  {"name": "x", "age": 1, "tags": []any{}, "attrs": map[string]any{}, "kind": "Z", "ok": true},
		"int overflow":    {"name": "x", "age": int64(1 << 40), "tags": []any{}, "attrs": map[string]any{}, "kind": "A", "ok": true},
		"bad array item":  {"name": "x", "age": 1, "tags": []any{1}, "attrs": map[string]any{}, "kind": "A", "ok": true},
		"fractional long": {"name": "x", "age": 1.5, "tags": []any{}, "attrs": map[string]any{}, "kind": "A", "ok": true},
	} {
		_, err := enc.Encode(context.Background(), "p", &connector.Record{Fields: fields})
		if reasonOf(err) != "avro-encode" {
			t.Errorf("%s: Encode = %v, want an avro-encode RecordError", name, err)
		}
	}
}

func TestEncoderAcceptsValuesFromOtherCodecs(t *testing.T) {
	schema := `{"type":"record","name":"X","fields":[
		{"name":"n","type":"long"},{"name":"f","type":"double"},{"name":"b","type":"bytes"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
		{"name":"opt","type":["null","long"],"default":null},
		{"name":"multi","type":["null","double","long","string"]}]}`
	// As the JSON decoder produces them.
	in := map[string]any{
		"n": json.Number("12"), "f": json.Number("1.5"), "b": "raw", "ts": "2024-01-02T03:04:05.123456Z",
		"dec": json.Number("-12.30"), "multi": int64(7),
	}
	want := map[string]any{
		"n": int64(12), "f": 1.5, "b": []byte("raw"), "ts": time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC),
		"dec": big.NewRat(-123, 10), "opt": nil, "multi": int64(7),
	}
	fake := fakeRegistry(t, map[int]string{1: schema})
	dec := valueDecoderFor(t, fake.URL())
	rec := &connector.Record{Value: wire(1, avroBody(t, schema, in))}
	if err := dec.Decode(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if !sameValue(map[string]any(rec.Fields), want) {
		t.Errorf("Fields = %#v, want %#v (multi must pick the long branch, not the double one)", rec.Fields, want)
	}
}

// Everything Confluent's serializer wrote decodes, re-encodes with Sluice's
// encoder and decodes to the same values; without maps (whose order Go does
// not keep) the bytes are identical to Confluent's.
func TestGoldenRoundTripThroughEncoder(t *testing.T) {
	for _, gc := range loadGolden(t) {
		t.Run(gc.Case, func(t *testing.T) {
			schemas := map[int]string{}
			for _, s := range gc.Schemas {
				schemas[s.ID] = s.Schema
			}
			fake := fakeRegistry(t, schemas)
			dec := valueDecoderFor(t, fake.URL())
			for i, r := range gc.Records {
				b, _ := hex.DecodeString(r.Hex)
				rec := &connector.Record{Value: b}
				if err := dec.Decode(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				s, _ := parseSchema(schemas[r.SchemaID], nil)
				enc, err := compileEncoder(s)
				if err != nil {
					t.Fatal(err)
				}
				var v any = map[string]any(rec.Fields)
				if _, isRecord := deref(s).(*avro.RecordSchema); !isRecord {
					v = rec.Fields[wrappedField]
				}
				w := &avroWriter{}
				if err := enc.encode(w, v, lenient); err != nil {
					t.Fatalf("record %d: re-encoding: %v", i, err)
				}
				again := &connector.Record{Value: wire(r.SchemaID, w.buf)}
				if err := dec.Decode(context.Background(), again); err != nil {
					t.Fatalf("record %d: decoding the re-encoded bytes: %v", i, err)
				}
				if !sameValue(map[string]any(again.Fields), map[string]any(rec.Fields)) {
					t.Errorf("record %d: round trip changed the value:\n got %v\nwant %v", i, again.Fields, rec.Fields)
				}
				if gc.Case != "all_types" && hex.EncodeToString(again.Value) != r.Hex {
					t.Errorf("record %d: Sluice wrote %x, Confluent %s", i, again.Value, r.Hex)
				}
			}
		})
	}
}

func TestJSONEncoder(t *testing.T) {
	rec := &connector.Record{
		Fields: map[string]any{
			"z": "last", "amount": big.NewRat(1234, 100), "day": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
			"at": time.Date(2024, 2, 29, 1, 2, 3, 4000, time.UTC), "tod": 13*time.Hour + 5*time.Microsecond,
			"n": int64(9007199254740993), "raw": []byte{1, 2}, "nested": map[string]any{"b": 1.5, "a": nil},
			"list": []any{true, "x"},
		},
		Schema: &connector.Schema{Fields: []connector.Field{
			{Name: "n", Type: connector.TypeInt},
			{Name: "amount", Type: connector.TypeDecimal, Precision: 10, Scale: 3},
			{Name: "day", Type: connector.TypeDate},
		}},
	}
	b, err := JSONEncoder{}.Encode(context.Background(), "t", rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"n":9007199254740993,"amount":12.340,"day":"2024-02-29","at":"2024-02-29T01:02:03.000004Z",` +
		`"list":[true,"x"],"nested":{"a":null,"b":1.5},"raw":"AQI=","tod":"13:00:00.000005","z":"last"}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
	_, err = JSONEncoder{}.Encode(context.Background(), "t", &connector.Record{Fields: map[string]any{"x": math.NaN()}})
	if reasonOf(err) != "json-encode" {
		t.Errorf("NaN: %v, want a json-encode RecordError", err)
	}
}

func TestKeyAndValueFormats(t *testing.T) {
	keySchema := `{"type":"record","name":"Key","fields":[{"name":"id","type":"long"}]}`
	fake := fakeRegistry(t, map[int]string{1: personSchema, 2: keySchema, 3: `"string"`})
	url := fake.URL()
	cases := []struct {
		name      string
		opts      Options
		key, val  []byte
		wantKey   any
		wantValue map[string]any
		reason    string
	}{
		{name: "raw raw", opts: Options{}, key: []byte("k"), val: []byte("v")},
		{name: "string key, json value", opts: Options{Key: FormatString, Value: FormatJSON},
			key: []byte("user-1"), val: []byte(`{"a":1}`), wantKey: "user-1", wantValue: map[string]any{"a": json.Number("1")}},
		{name: "json key", opts: Options{Key: FormatJSON}, key: []byte(`[1,"x"]`), val: []byte("v"),
			wantKey: []any{json.Number("1"), "x"}},
		{name: "string value", opts: Options{Value: FormatString}, val: []byte("héllo"), wantValue: map[string]any{"value": "héllo"}},
		{name: "avro record key", opts: Options{Key: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: url}},
			key: wire(2, long(77)), val: []byte("v"), wantKey: map[string]any{"id": int64(77)}},
		{name: "avro string key and value", opts: Options{Key: FormatAvroConfluent, Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: url}},
			key: wire(3, cat(long(1), []byte("k"))), val: wire(1, avroBody(t, personSchema, person)), wantKey: "k", wantValue: person},
		{name: "bad string key", opts: Options{Key: FormatString}, key: []byte{0xff}, reason: "string"},
		{name: "bad json value", opts: Options{Value: FormatJSON}, val: []byte(`{"a":`), reason: "json"},
		{name: "bad avro key", opts: Options{Key: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: url}}, key: []byte("plain"), reason: ReasonWireFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dec, err := NewDecoder(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			rec := &connector.Record{Key: c.key, Value: c.val}
			err = dec.Decode(context.Background(), rec)
			if c.reason != "" {
				if reasonOf(err) != c.reason {
					t.Fatalf("Decode = %v, want reason %q", err, c.reason)
				}
				if !strings.Contains(err.Error(), "decoding key") && !strings.Contains(err.Error(), "decoding value") {
					t.Errorf("error %q does not say key or value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameValue(rec.KeyFields, c.wantKey) && !sameValue([]any{rec.KeyFields}, []any{c.wantKey}) {
				t.Errorf("KeyFields = %#v, want %#v", rec.KeyFields, c.wantKey)
			}
			if c.wantValue == nil && rec.Fields != nil || c.wantValue != nil && !sameValue(map[string]any(rec.Fields), c.wantValue) {
				t.Errorf("Fields = %#v, want %#v", rec.Fields, c.wantValue)
			}
		})
	}
}

func TestOptionsValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		fields []string
	}{
		{"ok raw", Options{}, nil},
		{"ok avro", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "http://a:8081,https://b"}}, nil},
		{"ok host only", Options{Key: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "localhost:8081"}}, nil},
		{"unknown formats", Options{Key: "avro", Value: "protobuf"}, []string{"format.key", "format.value"}},
		{"avro without url", Options{Value: FormatAvroConfluent}, []string{"format.schema_registry.url"}},
		{"bad scheme", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "ftp://x"}}, []string{"format.schema_registry.url"}},
		{"two auths", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "http://x", Username: "u", Password: "p", BearerToken: "t"}},
			[]string{"format.schema_registry.bearer_token"}},
		{"password alone", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "http://x", Password: "p"}}, []string{"format.schema_registry.username"}},
		{"cert without key", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "https://x", TLS: TLSOptions{CertFile: "c.pem"}}},
			[]string{"format.schema_registry.tls.key_file"}},
		{"bad reader schema", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "http://x"}, ReaderSchema: `{"type":"nope"}`},
			[]string{"format.reader_schema"}},
		{"reader schema without avro", Options{Value: FormatJSON, ReaderSchema: `"string"`}, []string{"format.reader_schema"}},
		{"bad strategy", Options{SubjectStrategy: "by-topic"}, []string{"format.subject_strategy"}},
		{"negative timeout", Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "http://x", Timeout: -1}}, []string{"format.schema_registry.timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.opts.Validate()
			if len(c.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors for %v", c.fields)
			}
			for _, f := range c.fields {
				if !strings.Contains(err.Error(), f+":") {
					t.Errorf("Validate = %q, want a problem with %s", err, f)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Validate error %T does not hold a *FieldError", err)
			}
		})
	}
	_, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: "https://x", TLS: TLSOptions{CAFile: "/does/not/exist.pem"}}})
	if err == nil || !strings.Contains(err.Error(), "format.schema_registry.tls.ca_file") {
		t.Errorf("NewDecoder with a missing CA file = %v, want an error naming tls.ca_file", err)
	}
}
