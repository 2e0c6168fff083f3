package admin

import (
	"encoding/json"
	"testing"
)

// The admin API's request bodies come from whoever can reach it: decoding
// must never panic, and what it accepts is what the handlers expect.

func FuzzParseAddConsumer(f *testing.F) {
	for _, s := range []string{"", `{"name": "burst-1"}`, `{}`, `{"name": "a b"}`, `{"name": 1}`, `{} {}`, `{"nmae": "x"}`, "\x00", `{"name": "` + string(make([]byte, 200)) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		name, err := parseAddConsumer(body)
		if err != nil {
			if name != "" {
				t.Fatalf("error %v with a name %q", err, name)
			}
			return
		}
		if name != "" && !consumerName.MatchString(name) {
			t.Fatalf("accepted the name %q", name)
		}
	})
}

func FuzzParsePropertyChanges(f *testing.F) {
	for _, s := range []string{`{"max.poll.records": 1000}`, `{"fetch.max.wait.ms": "500ms", "client.id": null}`, `{"a": 1.5}`, `{"a": {"b": 1}}`, `{"a": [1]}`, `{}`, ``, `{"a": 1e400}`, `{"a": true} x`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		changes, err := parsePropertyChanges(body)
		if err != nil {
			return
		}
		if len(changes) == 0 || !json.Valid(body) {
			t.Fatalf("accepted %q as %v", body, changes)
		}
		for k, v := range changes {
			switch v.(type) {
			case int64, string, bool, nil:
			default:
				t.Fatalf("%s: accepted a %T", k, v)
			}
		}
	})
}
