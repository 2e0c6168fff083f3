package config

import (
	"strings"
	"testing"
)

func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const envMySQLFile = `
name: films
source:
  kafka: {brokers: [localhost:9092], topics: [films], group: g}
format: {value: json}
sink:
  mysql:
    dsn: root:${PW}@tcp(127.0.0.1:3306)/test
    table: films
`

func TestEnvPasswordWithHashIsNotCutAtComment(t *testing.T) {
	f, err := Parse([]byte(envMySQLFile), envOf("PW", "ab #cd"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Pipelines[0].Sink.MySQL.DSN, "root:ab #cd@tcp(127.0.0.1:3306)/test"; got != want {
		t.Fatalf("dsn = %q, want %q", got, want)
	}
	if out := f.YAML(); strings.Contains(out, "ab #cd") || !strings.Contains(out, "root:"+Redacted+"@tcp(127.0.0.1:3306)/test") {
		t.Fatalf("printed config shows the password from the environment:\n%s", out)
	}
}

func TestEnvReferenceInACommentIsIgnored(t *testing.T) {
	if _, err := Parse([]byte("# needs ${NOT_SET}\n"+envMySQLFile), envOf("PW", "pw")); err != nil {
		t.Fatal(err)
	}
}

func TestEnvValueCannotChangeYAMLStructure(t *testing.T) {
	f, err := Parse([]byte(`
name: films
source:
  kafka: {brokers: [localhost:9092], topics: ["${TOPIC}"], group: from-file}
format: {value: json}
sink:
  file:
    path: ${OUT}
`), envOf("TOPIC", "t], group: x", "OUT", "a: b\nc: d"))
	if err != nil {
		t.Fatal(err)
	}
	k := f.Pipelines[0].Source.Kafka
	if len(k.Topics) != 1 || k.Topics[0] != "t], group: x" || k.Group != "from-file" {
		t.Fatalf("topics = %q, group = %q: the variable changed the file's structure", k.Topics, k.Group)
	}
	if got := f.Pipelines[0].Sink.File.Path; got != "a: b\nc: d" {
		t.Fatalf("path = %q", got)
	}
}

func TestEnvForms(t *testing.T) {
	const file = `
name: films
source:
  kafka:
    brokers: ["${BROKER:-localhost:9092}"]
    topics: [films]
    group: ${GROUP:?set GROUP to the consumer group}
    consumers: ${N}
format: {value: json}
sink:
  file: {path: "${DIR:-/tmp}/${NAME:-out}.jsonl"}
`
	f, err := Parse([]byte(file), envOf("GROUP", "g1", "N", "3", "NAME", "${GROUP}"))
	if err != nil {
		t.Fatal(err)
	}
	k := f.Pipelines[0].Source.Kafka
	if k.Brokers[0] != "localhost:9092" || k.Group != "g1" || k.Consumers != 3 {
		t.Fatalf("kafka = %+v", k)
	}
	// Expanded text is not expanded again.
	if got := f.Pipelines[0].Sink.File.Path; got != "/tmp/${GROUP}.jsonl" {
		t.Fatalf("path = %q", got)
	}
}

func TestEnvErrorsNameFieldPathAndPosition(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"required with message", `
name: films
source:
  kafka: {brokers: [b:9092], topics: [films], group: "${GROUP:?set GROUP to the consumer group}"}
sink:
  file: {path: out}
`, []string{"source.kafka.group: ${GROUP}: environment variable is not set: set GROUP to the consumer group (line 4, column 55)"}},
		{"unset without default", `
name: films
source:
  kafka: {brokers: [b:9092], topics: [films], group: g}
sink:
  mysql:
    dsn: root:${PW}@tcp(h:3306)/db
    table: t
`, []string{"sink.mysql.dsn: ${PW}: environment variable is not set (use ${PW:-default} for a default) (line 7, column 15)"}},
		{"unterminated", `
name: films
source:
  kafka: {brokers: [b:9092], topics: [films], group: g}
sink:
  mysql:
    dsn: root:${UNSET@tcp(h:3306)/db
    table: t
`, []string{"sink.mysql.dsn: unterminated ${: no closing } (write ${NAME}) (line 7, column 15)"}},
		{"in a list of pipelines", `
pipelines:
  - name: a
    source:
      kafka: {brokers: [b:9092], topics: ["${T:x}"], group: g}
    sink:
      file: {path: out}
`, []string{"pipelines[0].source.kafka.topics[0]: ${T:...}: unknown form; use ${NAME}, ${NAME:-default} or ${NAME:?message} (line 5, column 44)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// A secret from the environment never appears in a problem message.
func TestEnvProblemsDoNotQuoteTheValue(t *testing.T) {
	_, err := Parse([]byte(`
name: films
source:
  kafka: {brokers: [b:9092], topics: [films], group: g}
sink:
  mysql:
    dsn: root:hunter2@tcp(h:3306)/db?x=${BAD
    table: t
`), noEnv)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnvUnquotedInFlowStyleGetsAHint(t *testing.T) {
	_, err := Parse([]byte(`
name: films
source:
  kafka: {brokers: [${B}], topics: [films], group: g}
sink:
  file: {path: out}
`), envOf("B", "b:9092"))
	if err == nil || !strings.Contains(err.Error(), `quote a ${VAR} reference: ["${VAR}"]`) {
		t.Fatalf("err = %v", err)
	}
}

// A value is the variable's text whatever it looks like to YAML.
func TestEnvValueKeepsItsTextInStringFields(t *testing.T) {
	for _, pw := range []string{"123", "0x1F", "null", "~", "true", "", "1e3", "- a", "&x", "*y", "!!int 5"} {
		f, err := Parse([]byte(envMySQLFile), envOf("PW", pw))
		if err != nil {
			t.Fatalf("PW=%q: %v", pw, err)
		}
		if got, want := f.Pipelines[0].Sink.MySQL.DSN, "root:"+pw+"@tcp(127.0.0.1:3306)/test"; got != want {
			t.Errorf("PW=%q: dsn %q, want %q", pw, got, want)
		}
	}
	const whole = "name: p\nsource: {kafka: {brokers: [b:9092], topics: [t], group: g}}\nsink:\n  file:\n    path: ${P}\n"
	for _, v := range []string{"123", "null", "~", "", "true", "1.5"} {
		f, err := Parse([]byte(whole), envOf("P", v))
		if v == "" {
			if err == nil || !strings.Contains(err.Error(), "sink.file.path: is required") {
				t.Errorf("P empty: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("P=%q: %v", v, err)
		}
		if got := f.Pipelines[0].Sink.File.Path; got != v {
			t.Errorf("P=%q: path %q", v, got)
		}
	}
}
