package codec

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// TestJSONEncoderKeyOrderReuse encodes records whose key sets repeat,
// change at the same size, shrink, grow and nest, in one sequence (so the
// remembered key order of one meets the next) and checks each against
// encoding/json, which sorts map keys too.
func TestJSONEncoderKeyOrderReuse(t *testing.T) {
	records := []map[string]any{
		{"b": json.Number("1"), "a": "x", "c": true},
		{"b": json.Number("2"), "a": "y", "c": false}, // same keys
		{"b": json.Number("3"), "a": "z", "d": nil},   // same size, one key differs
		{"a": "<&>", "d": nil},                        // fewer keys
		{"a": "q", "d": nil, "e": map[string]any{"z": 1, "y": []any{"s", json.Number("2.5")}}},
		{},
		{"a": "é\n\"", "b": int64(-4), "total": 1250, "kind": "view"},
		{"a": "é\n\"", "b": int64(-4), "total": 1250, "kind": "view"}, // again
		{"a": "r", "b": int64(5), "total": 7, "KIND": "view"},         // same size, case differs
		{"a<b": 1.5, "k\"q": true, "é": []any{}, "\t": int64(-9000)},  // keys to escape
		{"a<b": 2.5, "k\"q": false, "é": []any{nil}, "\t": int64(12)},
	}
	ctx := context.Background()
	for i, m := range records {
		got, err := JSONEncoder{}.Encode(ctx, "t", &connector.Record{Fields: m})
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("record %d: got %s, want %s", i, got, want)
		}
	}
}
