package codec

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/registry"
)

// customerVersions is a schema evolved three times, each step allowed by
// the registry's default BACKWARD compatibility: v2 adds a nullable field,
// v3 an enum with a default, v4 drops "name", widens "id" from int to long
// and adds "score" with a default.
var customerVersions = []string{
	`{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"id","type":"int"},{"name":"name","type":"string"}]}`,
	`{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"id","type":"int"},{"name":"name","type":"string"},
		{"name":"email","type":["null","string"],"default":null}]}`,
	`{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"id","type":"int"},{"name":"name","type":"string"},
		{"name":"email","type":["null","string"],"default":null},
		{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","PRO"],"default":"FREE"},"default":"FREE"}]}`,
	`{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"id","type":"long"},
		{"name":"email","type":["null","string"],"default":null},
		{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","PRO","ENTERPRISE"],"default":"FREE"},"default":"FREE"},
		{"name":"score","type":"double","default":0.5}]}`,
}

var customerRecords = []map[string]any{
	{"id": int64(1), "name": "Ada"},
	{"id": int64(2), "name": "Brian", "email": "b@example.com"},
	{"id": int64(3), "name": "Cleo", "email": nil, "tier": "PRO"},
	{"id": int64(4), "email": "d@example.com", "tier": "ENTERPRISE", "score": 9.75},
}

// registryServer runs Sluice's own registry for a test.
func registryServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// encodeCustomers writes one record per schema version, registering each
// version under customers-value through the encoder.
func encodeCustomers(t *testing.T, url string) [][]byte {
	t.Helper()
	var out [][]byte
	for i, schema := range customerVersions {
		enc, err := NewEncoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: url}}, schema)
		if err != nil {
			t.Fatal(err)
		}
		b, err := enc.Encode(context.Background(), "customers", &connector.Record{Fields: customerRecords[i]})
		if err != nil {
			t.Fatalf("encoding with version %d: %v", i+1, err)
		}
		out = append(out, b)
	}
	return out
}

func TestSchemaEvolvedThreeTimesEachRecordHasItsSchema(t *testing.T) {
	ts := registryServer(t)
	values := encodeCustomers(t, ts.URL)
	dec := valueDecoderFor(t, ts.URL)
	wantFields := [][]string{
		{"id", "name"},
		{"id", "name", "email"},
		{"id", "name", "email", "tier"},
		{"id", "email", "tier", "score"},
	}
	ids := map[int]bool{}
	for i, v := range values {
		rec := &connector.Record{Topic: "customers", Offset: int64(i), Value: v}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatalf("version %d: %v", i+1, err)
		}
		want := map[string]any{}
		for _, f := range wantFields[i] {
			want[f] = customerRecords[i][f]
		}
		if !sameValue(map[string]any(rec.Fields), want) {
			t.Errorf("version %d: Fields = %v, want %v", i+1, rec.Fields, want)
		}
		var names []string
		for _, f := range rec.Schema.Fields {
			names = append(names, f.Name)
		}
		if !slices.Equal(names, wantFields[i]) {
			t.Errorf("version %d: Schema fields = %v, want %v", i+1, names, wantFields[i])
		}
		if rec.Schema.Name != "shop.Customer" || ids[rec.Schema.ID] {
			t.Errorf("version %d: Schema %s id %d, want shop.Customer with an id of its own", i+1, rec.Schema.Name, rec.Schema.ID)
		}
		ids[rec.Schema.ID] = true
	}
	if n := dec.RegistryLookups(); n != 4 {
		t.Errorf("RegistryLookups = %d, want 4", n)
	}
}

func TestPinnedReaderSchemaResolvesEveryVersion(t *testing.T) {
	ts := registryServer(t)
	values := encodeCustomers(t, ts.URL)
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}, ReaderSchema: customerVersions[3]})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": int64(1), "email": nil, "tier": "FREE", "score": 0.5},
		{"id": int64(2), "email": "b@example.com", "tier": "FREE", "score": 0.5},
		{"id": int64(3), "email": nil, "tier": "PRO", "score": 0.5},
		{"id": int64(4), "email": "d@example.com", "tier": "ENTERPRISE", "score": 9.75},
	}
	for i, v := range values {
		rec := &connector.Record{Value: v}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatalf("version %d: %v", i+1, err)
		}
		if !sameValue(map[string]any(rec.Fields), want[i]) {
			t.Errorf("version %d read as v4: Fields = %v, want %v", i+1, rec.Fields, want[i])
		}
		if len(rec.Schema.Fields) != 4 || rec.Schema.ID != 0 {
			t.Errorf("version %d: Schema = %+v, want the reader's 4 fields, ID 0", i+1, rec.Schema)
		}
	}

	// A writer schema the reader cannot resolve is bad input, not a retry.
	oldReader, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL},
		ReaderSchema: `{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"id","type":"int"},{"name":"must","type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	err = oldReader.Decode(context.Background(), &connector.Record{Value: values[0]})
	if reasonOf(err) != ReasonSchemaResolution {
		t.Fatalf("Decode with an unresolvable reader schema = %v, want schema-resolution", err)
	}
}

func TestReaderSchemaDefaultsAreNotShared(t *testing.T) {
	ts := registryServer(t)
	values := encodeCustomers(t, ts.URL)
	reader := `{"type":"record","name":"Customer","namespace":"shop","fields":[
		{"name":"id","type":"long"},
		{"name":"labels","type":{"type":"array","items":"string"},"default":["new"]}]}`
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}, ReaderSchema: reader})
	if err != nil {
		t.Fatal(err)
	}
	a, b := &connector.Record{Value: values[0]}, &connector.Record{Value: values[1]}
	for _, r := range []*connector.Record{a, b} {
		if err := dec.Decode(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	la := a.Fields["labels"].([]any)
	la[0] = "mutated"
	if got := b.Fields["labels"].([]any)[0]; got != "new" {
		t.Errorf("second record's default = %v: defaults must not be shared between records", got)
	}
}
