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

// TestTemplatesNameOnlyTheReaderSchemasFields: with a pinned reader
// schema the fields of every value are known, so a table template naming
// one the schema lacks fails every record; validate says so first.
func TestTemplatesNameOnlyTheReaderSchemasFields(t *testing.T) {
	file := func(table string) string {
		return `
name: s
source: {kafka: {brokers: [b:1], topics: [t], group: g}}
format:
  value: avro-confluent
  schema_registry: {url: "http://r:8081"}
  reader_schema: '{"type":"record","name":"Film","fields":[{"name":"id","type":"long"},{"name":"kind","type":"string"}]}'
sink:
  kafka: {brokers: [b:1], topic: '` + table + `'}
`
	}
	if _, err := Parse([]byte(file("films-{{.Value.kind}}")), nil); err != nil {
		t.Fatalf("a template naming a schema field: %v", err)
	}
	_, err := Parse([]byte(file("films-{{.Value.knd}}")), nil)
	if err == nil || !strings.Contains(err.Error(), "sink.kafka.topic: template uses .Value.knd") {
		t.Fatalf("a template naming a field the schema lacks: %v", err)
	}
}
