package codec

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/registry"
)

// goldenCase is one testdata/golden/*.json file, written by
// testdata/make_golden.py with Confluent's serializer.
type goldenCase struct {
	Case       string `json:"case"`
	Serializer string `json:"serializer"`
	Schemas    []struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
		ID      int    `json:"id"`
		Schema  string `json:"schema"`
	} `json:"schemas"`
	Records []struct {
		Topic    string          `json:"topic"`
		SchemaID int             `json:"schema_id"`
		Hex      string          `json:"hex"`
		Expected json.RawMessage `json:"expected"`
	} `json:"records"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden vectors in testdata/golden (err %v)", err)
	}
	var cases []goldenCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c goldenCase
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestMakeGoldenVectors regenerates testdata/golden by running Confluent's
// Python serializer against Sluice's registry. It is not part of the
// normal run: SLUICE_MAKE_GOLDEN=1 go test -run TestMakeGoldenVectors .
func TestMakeGoldenVectors(t *testing.T) {
	if os.Getenv("SLUICE_MAKE_GOLDEN") == "" {
		t.Skip("set SLUICE_MAKE_GOLDEN=1 to regenerate testdata/golden with Confluent's Python serializer")
	}
	srv, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	out, err := exec.Command("/usr/bin/python3", "testdata/make_golden.py", ts.URL, "testdata/golden").CombinedOutput()
	if err != nil {
		t.Fatalf("make_golden.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestGoldenVectorsFromConfluentSerializer(t *testing.T) {
	for _, gc := range loadGolden(t) {
		t.Run(gc.Case, func(t *testing.T) {
			fake := srfake.New()
			t.Cleanup(fake.Close)
			ids := map[int]bool{}
			for _, s := range gc.Schemas {
				fake.SeedSchema(s.Subject, s.Version, s.ID, sr.Schema{Schema: s.Schema, Type: sr.TypeAvro})
			}
			dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range gc.Records {
				ids[r.SchemaID] = true
				value, err := hex.DecodeString(r.Hex)
				if err != nil {
					t.Fatal(err)
				}
				rec := &connector.Record{Topic: r.Topic, Offset: int64(i), Value: value}
				if err := dec.Decode(context.Background(), rec); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				var got any = rec.Fields
				var want any
				if err := unmarshalNumbers(r.Expected, &want); err != nil {
					t.Fatal(err)
				}
				if !isRecordValue(want) {
					got = rec.Fields[wrappedField] // a value that is not a record
				}
				if err := matchTagged(want, got, "value"); err != nil {
					t.Errorf("record %d (schema %d): %v", i, r.SchemaID, err)
				}
				if rec.Schema == nil || rec.Schema.ID != r.SchemaID {
					t.Errorf("record %d: Schema = %+v, want ID %d", i, rec.Schema, r.SchemaID)
				}
				for name := range rec.Fields {
					if !schemaHasField(rec.Schema, name) {
						t.Errorf("record %d: field %q missing from its Schema", i, name)
					}
				}
			}
			if got := dec.RegistryLookups(); got != int64(len(ids)) {
				t.Errorf("RegistryLookups = %d, want %d (one per schema id)", got, len(ids))
			}
		})
	}
}

// isRecordValue reports whether a tagged expected value is a record (an
// object that is not a tagged scalar).
func isRecordValue(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k := range m {
		if len(m) == 1 && len(k) > 0 && k[0] == '$' {
			return false
		}
	}
	return true
}

func schemaHasField(s *connector.Schema, name string) bool {
	for _, f := range s.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// matchTagged compares a decoded value with the tagged JSON form
// make_golden.py writes ({"$int": "5"}, {"$timestamp_us": "..."}, ...).
func matchTagged(want, got any, path string) error {
	switch w := want.(type) {
	case nil:
		if got != nil {
			return fmt.Errorf("%s: got %#v, want nil", path, got)
		}
		return nil
	case bool, string:
		if got != w {
			return fmt.Errorf("%s: got %#v, want %#v", path, got, w)
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %#v, want %d items", path, got, len(w))
		}
		for i := range w {
			if err := matchTagged(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if len(w) == 1 {
			for k, v := range w {
				if s, ok := v.(string); ok && len(k) > 0 && k[0] == '$' {
					return matchScalar(k, s, got, path)
				}
			}
		}
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %#v, want %d keys %v", path, got, len(w), w)
		}
		for k := range w {
			if err := matchTagged(w[k], g[k], path+"."+k); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: unexpected expected value %#v", path, want)
}

func matchScalar(tag, s string, got any, path string) error {
	bad := func() error { return fmt.Errorf("%s: got %T %#v, want %s %s", path, got, got, tag, s) }
	switch tag {
	case "$int":
		n, err := strconv.ParseInt(s, 10, 64)
		if g, ok := got.(int64); err != nil || !ok || g != n {
			return bad()
		}
	case "$float":
		f, err := strconv.ParseFloat(s, 64)
		if g, ok := got.(float64); err != nil || !ok || g != f {
			return bad()
		}
	case "$bytes":
		b, err := hex.DecodeString(s)
		if g, ok := got.([]byte); err != nil || !ok || string(g) != string(b) {
			return bad()
		}
	case "$decimal":
		r, ok1 := new(big.Rat).SetString(s)
		if g, ok := got.(*big.Rat); !ok1 || !ok || g.Cmp(r) != 0 {
			return bad()
		}
	case "$date":
		d, err := time.Parse(time.DateOnly, s)
		if g, ok := got.(time.Time); err != nil || !ok || !g.Equal(d) || g.Location() != time.UTC {
			return bad()
		}
	case "$time_us":
		n, err := strconv.ParseInt(s, 10, 64)
		if g, ok := got.(time.Duration); err != nil || !ok || g != time.Duration(n)*time.Microsecond {
			return bad()
		}
	case "$timestamp_us":
		n, err := strconv.ParseInt(s, 10, 64)
		if g, ok := got.(time.Time); err != nil || !ok || !g.Equal(time.UnixMicro(n)) || g.Location() != time.UTC {
			return bad()
		}
	default:
		return fmt.Errorf("%s: unknown tag %s", path, tag)
	}
	return nil
}
