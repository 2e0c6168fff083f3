package bqemu

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzDecodeRow feeds arbitrary bytes to the row decoder, as a client can:
// it must return a row error or a valid canonical row, never panic.
func FuzzDecodeRow(f *testing.F) {
	md, _ := writerSchema(f, eventSchema())
	fields, _ := normalizeFields(eventSchema(), "")
	plan, err := buildPlan(md, fields, "")
	if err != nil {
		f.Fatal(err)
	}
	dec := &rowDecoder{msgType: dynamicpb.NewMessageType(md), plan: plan}
	f.Add(encodeRow(f, md, map[string]any{"id": 1, "name": "a", "tags": []any{"x"},
		"addr": map[string]any{"city": "c"}, "items": []any{map[string]any{"qty": 3}}}))
	f.Add(encodeRow(f, md, map[string]any{"id": -5, "payload": `{"a":1}`, "ts": int64(1)}))
	f.Add([]byte{0x08, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := dec.decode(raw, missingValues{}, time.Unix(0, 0))
		if err != nil {
			return
		}
		var row map[string]any
		if err := json.Unmarshal(out, &row); err != nil {
			t.Fatalf("decoded row is not JSON: %q", out)
		}
		if _, err := typedRecord(fields, row); err != nil {
			t.Fatalf("decoded row %s does not read back: %v", out, err)
		}
	})
}
