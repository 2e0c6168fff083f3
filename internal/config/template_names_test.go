package config

import (
	"strings"
	"testing"
)

func TestTemplatesNamingWhatARecordLacksAreRefused(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		bad  string // "" when accepted
	}{
		{"plain", ""},
		{"out-{{.Topic}}-{{.Partition}}", ""},
		{"{{.Value.kind}}", ""},
		{"{{.Schema.Name}}-{{.Headers.src}}-{{.Key}}-{{.Offset}}-{{.Timestamp.Year}}", ""},
		{`{{if .Value.kind}}{{.Value.kind}}{{else}}other{{end}}`, ""},
		{`{{with .Value.kind}}{{.}}{{end}}`, ""},
		{`{{range $k, $v := .Headers}}{{$k}}{{end}}`, ""},
		{"{{.Nope}}", ".Nope"},
		{"{{.topic}}", ".topic"},
		{`{{if .Nope}}x{{end}}`, ".Nope"},
		{`{{printf "%s-%s" .Topic .Tpoic}}`, ".Tpoic"},
		{`{{$.Nope.x}}`, ".Nope"},
	} {
		v := &validator{}
		v.template("topic", tc.tmpl)
		got := strings.Join(v.probs, "; ")
		switch {
		case tc.bad == "" && got != "":
			t.Errorf("%s: refused: %s", tc.tmpl, got)
		case tc.bad != "" && !strings.Contains(got, "template uses "+tc.bad):
			t.Errorf("%s: problems %q, want one naming %s", tc.tmpl, got, tc.bad)
		}
	}
}

func TestAdminListenMustBeAnAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, ":8080": true, "[::1]:8080": true, "localhost:0": true,
		"not an address": false, "127.0.0.1": false, "127.0.0.1:99999": false, "a b:80": false, "host:port": false,
	} {
		err := checkListenAddress(addr)
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", addr, err, ok)
		}
	}
}
