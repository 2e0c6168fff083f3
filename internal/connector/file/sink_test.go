package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

func TestLinesAreJSONWithEveryField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := NewSink(path, true)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 22, 1, 2, 3, 456000000, time.UTC)
	recs := []*connector.Record{
		{Topic: "t", Partition: 2, Offset: 7, Timestamp: ts, Key: []byte("k\"1"), Value: []byte(`{"a": 1,
 "b": [true, null]}`), Headers: []connector.Header{{Key: "h", Value: []byte("v\n")}}},
		{Topic: "t", Offset: 8, Timestamp: ts, Value: []byte("plain text \u2028 <ok>")},
		{Topic: "t", Offset: 9, Timestamp: ts, Key: []byte{0xff, 0x00}, Value: []byte{0x00, 0xfe, 0x01}},
		{Topic: "t", Offset: 10, Timestamp: ts, Value: []byte("x"), Fields: map[string]any{"id": json.Number("10"), "name": "ten"}},
		{Topic: "t", Offset: 11, Timestamp: ts}, // a tombstone
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5", len(lines))
	}
	l := lines[0]
	if l["topic"] != "t" || l["partition"] != 2.0 || l["offset"] != 7.0 || l["timestamp"] != "2026-11-22T01:02:03.456Z" || l["key"] != "k\"1" {
		t.Fatalf("line 0 = %v", l)
	}
	if v := l["value"].(map[string]any); v["a"] != 1.0 || l["headers"].(map[string]any)["h"] != "v\n" {
		t.Fatalf("line 0 value/headers = %v", l)
	}
	if lines[1]["value"] != "plain text \u2028 <ok>" {
		t.Fatalf("line 1 value = %q", lines[1]["value"])
	}
	if lines[2]["key_encoding"] != "base64" || lines[2]["value_encoding"] != "base64" || lines[2]["value"] != "AP4B" {
		t.Fatalf("line 2 = %v", lines[2])
	}
	if v := lines[3]["value"].(map[string]any); v["name"] != "ten" || v["id"] != 10.0 {
		t.Fatalf("line 3 = %v", lines[3])
	}
	if lines[4]["value"] != nil || lines[4]["key"] != nil {
		t.Fatalf("line 4 = %v", lines[4])
	}
}

// FuzzJSONStringMatchesEncodingJSON: whatever the bytes, the string reads
// back as encoding/json would write it.
func FuzzJSONStringMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\x7f", "\xff\xfe", "é😀", "\u2028\u2029", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %s: not JSON: %v", s, b, err)
		}
		std, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q read back as %q; encoding/json gives %q", s, got, want)
		}
	})
}
