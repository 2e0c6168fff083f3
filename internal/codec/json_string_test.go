package codec

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The fast path of writeJSONString writes what encoding/json writes.
func TestWriteJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\n", "<html> & co", "zürich", "\u2028", "\x7f", "emoji 🚀", "\xff bad utf-8"} {
		var buf bytes.Buffer
		writeJSONString(&buf, s)
		want, _ := json.Marshal(s)
		if buf.String() != string(want) {
			t.Errorf("%q: wrote %s, encoding/json writes %s", s, buf.String(), want)
		}
	}
}
