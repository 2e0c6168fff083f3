package codec

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// requirePython skips unless /usr/bin/python3 has Confluent's client and an
// Avro library (Debian: python3-confluent-kafka python3-avro
// python3-requests).
func requirePython(t *testing.T) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c",
		"import confluent_kafka, avro, requests; from confluent_kafka.avro import CachedSchemaRegistryClient").CombinedOutput()
	if err != nil {
		t.Skipf("/usr/bin/python3 cannot load confluent_kafka's Avro serde (apt-get install -y python3-confluent-kafka python3-avro python3-requests): %v: %s",
			err, bytes.TrimSpace(out))
	}
}

// Values Sluice encodes decode with Confluent's own Python deserializer to
// the values Confluent's serializer started from (the golden vectors).
func TestConfluentPythonDecodesSluiceEncoded(t *testing.T) {
	requirePython(t)
	ts := registryServer(t)
	var lines []string
	var want []json.RawMessage
	for _, gc := range loadGolden(t) {
		if gc.Case != "all_types" && gc.Case != "evolution" {
			continue
		}
		schemas := map[int]string{}
		for _, s := range gc.Schemas {
			schemas[s.ID] = s.Schema
		}
		fake := fakeRegistry(t, schemas)
		dec := valueDecoderFor(t, fake.URL())
		encoders := map[int]Encoder{}
		for _, r := range gc.Records {
			b, _ := hex.DecodeString(r.Hex)
			rec := &connector.Record{Value: b}
			if err := dec.Decode(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			enc := encoders[r.SchemaID]
			if enc == nil {
				var err error
				enc, err = NewEncoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: ts.URL}}, schemas[r.SchemaID])
				if err != nil {
					t.Fatal(err)
				}
				encoders[r.SchemaID] = enc
			}
			out, err := enc.Encode(context.Background(), "sluice-"+gc.Case, rec)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, hex.EncodeToString(out))
			want = append(want, r.Expected)
		}
	}
	cmd := exec.Command("/usr/bin/python3", "testdata/decode_with_python.py", ts.URL)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("decode_with_python.py: %v\n%s", err, stderr)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(want) {
		t.Fatalf("python decoded %d values, want %d", len(got), len(want))
	}
	for i := range want {
		var g, w any
		if err := unmarshalNumbers([]byte(got[i]), &g); err != nil {
			t.Fatal(err)
		}
		if err := unmarshalNumbers(want[i], &w); err != nil {
			t.Fatal(err)
		}
		// python3-avro does not know local-timestamp-*: it returns the long.
		if m, ok := g.(map[string]any); ok {
			localTimestampAsMicros(m, "ltsm", 1000)
			localTimestampAsMicros(m, "ltsu", 1)
		}
		if !sameJSON(g, w) {
			t.Errorf("value %d: python decoded\n%s\nwant\n%s", i, got[i], want[i])
		}
	}
}

func localTimestampAsMicros(m map[string]any, key string, factor int64) {
	v, ok := m[key].(map[string]any)
	if !ok {
		return
	}
	if s, ok := v["$int"].(string); ok {
		i, _ := strconv.ParseInt(s, 10, 64)
		m[key] = map[string]any{"$timestamp_us": strconv.FormatInt(i*factor, 10)}
	}
}

// sameJSON compares two tagged JSON values, numbers in $float by value.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if k == "$float" || k == "$decimal" {
				return numericEqual(v, y[k])
			}
			if !sameJSON(v, y[k]) {
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
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		return numericEqual(a, b)
	}
	return a == b
}

func numericEqual(a, b any) bool {
	as, _ := a.(string)
	bs, _ := b.(string)
	if n, ok := a.(json.Number); ok {
		as = string(n)
	}
	if n, ok := b.(json.Number); ok {
		bs = string(n)
	}
	ra, ok1 := parseRat(as)
	rb, ok2 := parseRat(bs)
	return ok1 && ok2 && ra.Cmp(rb) == 0
}
