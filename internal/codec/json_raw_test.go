package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// checkScanMatchesDecoder holds ScanJSONObject to the decoder: what it
// indexes, the decoder decodes to exactly those members, with the values
// RawMemberValue gives; and the members written by AppendRawMember decode
// to the same object.
func checkScanMatchesDecoder(t *testing.T, data []byte) (indexed bool) {
	t.Helper()
	members, ok := ScanJSONObject(data, nil)
	if !ok {
		return false
	}
	want, err := decodeJSONObject(data)
	if err != nil || want == nil {
		t.Fatalf("ScanJSONObject(%q) indexed what the decoder refuses: %v", data, err)
	}
	got := map[string]any{}
	for i := range members {
		got[members[i].Key] = RawMemberValue(data, &members[i])
	}
	if len(got) != len(members) || !reflect.DeepEqual(got, want) {
		t.Fatalf("ScanJSONObject(%q) members = %#v; the decoder gives %#v", data, got, want)
	}
	// Written again, all of them and every other one.
	for _, gone := range []uint64{0, 0x5555555555555555} {
		var buf bytes.Buffer
		buf.WriteByte('{')
		AppendRawMembers(&buf, data, members, gone)
		buf.WriteByte('}')
		again, err := decodeJSONObject(buf.Bytes())
		if err != nil {
			t.Fatalf("members of %q written again as %q do not decode: %v", data, buf.Bytes(), err)
		}
		for i := range members {
			if gone&(1<<i) != 0 {
				delete(got, members[i].Key)
			}
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("members of %q written again as %q decode to %#v; want %#v", data, buf.Bytes(), again, got)
		}
	}
	return true
}

func TestScanJSONObjectIndexesOnlyWhatItCanCopyExactly(t *testing.T) {
	// What the decoder accepts but changes (duplicates, invalid UTF-8),
	// or where keys are not their text, is left to the decoder.
	left := map[string]bool{
		"null is a nil map": true, "last duplicate key wins": true, "escaped key": true,
		"invalid UTF-8 byte": true, "truncated UTF-8 sequence": true, "UTF-8 encoded surrogate": true,
		"invalid UTF-8 in a key": true, "invalid UTF-8 after an escape": true, "max depth": true,
	}
	for _, tc := range jsonEdgeCases {
		t.Run(tc.name, func(t *testing.T) {
			indexed := checkScanMatchesDecoder(t, []byte(tc.in))
			if want := tc.ok && !left[tc.name]; indexed != want {
				t.Errorf("ScanJSONObject(%q) ok = %v, want %v", tc.in, indexed, want)
			}
		})
	}
}

// TestAppendJSONNameAndValueAreTheEncoders: a set field is written as the
// JSON encoder writes it in a record.
func TestAppendJSONNameAndValueAreTheEncoders(t *testing.T) {
	for _, v := range []any{nil, "a<b", int64(-3), 1.5, true, json.Number("1e3"), map[string]any{"z": 1.0, "a": []any{"x"}}} {
		want, err := JSONEncoder{}.Encode(context.Background(), "t", &connector.Record{Fields: map[string]any{"k": v}})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.WriteByte('{')
		AppendJSONName(&buf, "k")
		if err := AppendJSONValue(&buf, v); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('}')
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("AppendJSONValue(%#v) = %s, want %s", v, buf.Bytes(), want)
		}
	}
}
