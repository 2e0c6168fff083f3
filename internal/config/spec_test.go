package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parseProblems parses a file that must be refused and returns its problems.
func parseProblems(t *testing.T, yaml string) string {
	t.Helper()
	_, err := Parse([]byte(yaml), noEnv)
	if err == nil {
		t.Fatalf("parsed without error:\n%s", yaml)
	}
	return err.Error()
}

func TestConfigErrorsNameFieldPathLineAndSuggestion(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"misspelt key suggests the closest", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g, start_form: latest}
sink:
  file: {path: out, snyc: true}
`, []string{"source.kafka.start_form: unknown key (line 4); did you mean start_from?", "sink.file.snyc: unknown key (line 6); did you mean sync?"}},
		{"a key far from any has no suggestion", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g, colour: blue}
sink:
  file: {path: out}
`, []string{"source.kafka.colour: unknown key (line 4); known keys: brokers"}},
		{"type errors in a sink block", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g, consumers: two}
sink:
  postgres:
    dsn: postgres://u@h/d
    table: t
    create_table: maybe
    writers: [1]
    merge: {call: "CALL m()", every_records: 10, idle: soon}
`, []string{
			`source.kafka.consumers: "two" is not an integer (line 4)`,
			`sink.postgres.create_table: "maybe" is not true or false (line 9)`,
			`sink.postgres.writers: expects an integer, not a list (line 10)`,
			`sink.postgres.merge.idle: "soon" is not a duration such as 500ms, 30s or 5m (line 11)`,
		}},
		{"type errors in named sinks and in a pipeline list", `
pipelines:
  - name: a
    source: {kafka: {brokers: b:9092, topics: [t], group: g}}
    sinks:
      out: {kafka: {brokers: [b:9092], topic: o, create_topic: 3}}
    route: [{sink: out}]
`, []string{
			`pipelines[0].source.kafka.brokers: expects a list such as [a, b], not "b:9092" (line 4)`,
			`pipelines[0].sinks.out.kafka.create_topic: expects a mapping of keys, not "3" (line 6)`,
		}},
		{"enums and ranges from the tags, with their paths", `
pipelines:
  - name: a
    source: {kafka: {brokers: [b:9092], topics: [t], group: g, consumers: 0, isolation: dirty}}
    format: {value: xml}
    sink:
      bigquery: {project: p, dataset: d, table: t, max_connections: 101, metadata: [topic, colour]}
  - name: b
    source: {pubsub: {project: p, subscription: sub, streams: -1}}
    batch: {max_bytes: -5, linger: -1s}
    sinks:
      k: {kafka: {brokers: [b:9092], topic: o, compression: brotli, transaction_timeout: 1h}}
    route: [{sink: k}]
`, []string{
			"pipelines[0].source.kafka.consumers: must be between 1 and 256",
			`pipelines[0].source.kafka.isolation: "dirty" is not one of read_uncommitted, read_committed`,
			`pipelines[0].format.value: "xml" is not one of raw, string, json, avro-confluent`,
			"pipelines[0].sink.bigquery.max_connections: must be between 1 and 100",
			`pipelines[0].sink.bigquery.metadata[1]: "colour" is not one of topic, partition, offset, timestamp, key`,
			"pipelines[1].source.pubsub.streams: must be > 0",
			"pipelines[1].batch.max_bytes: must be > 0",
			"pipelines[1].batch.linger: must be a positive duration such as 500ms or 30s",
			`pipelines[1].sinks.k.kafka.compression: "brotli" is not one of none, gzip, snappy, lz4, zstd`,
			"pipelines[1].sinks.k.kafka.transaction_timeout: 1h0m0s is outside 1ms-15m",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseProblems(t, tt.yaml)
			for _, want := range tt.want {
				if !strings.Contains(got, want) {
					t.Errorf("missing %q in:\n%s", want, got)
				}
			}
		})
	}
}

func TestIndentationErrorNamesTheMisindentedLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"key outdented", "name: x\nsource:\n  kafka:\n    brokers: [b]\n   group: g\n", "the indentation of line 5 does not match"},
		{"key under a value", "name: x\nsource:\n  kafka:\n    brokers: [b]\n      group: g\n", "the indentation of line 5 does not match"},
		{"list item outdented", "name: x\nsource:\n  kafka:\n    topics:\n    - a\n   - b\n", "the indentation of line 6 does not match"},
		{"tab", "name: x\nsource:\n\tkafka: {}\n", "line 3: found character that cannot start any token (a tab: YAML indents with spaces)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseProblems(t, tt.yaml); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

// specFields visits every field of every config block reachable from File.
func specFields(t *testing.T, visit func(path string, f Field)) {
	t.Helper()
	bls, _ := blocks()
	for _, bl := range bls {
		for _, f := range bl.fields {
			visit(join(bl.path, f.Key), f)
		}
	}
}

// TestEveryFieldIsDocumented: docs/config.md has no field without a
// description. A field added without a doc tag fails here: give it one.
func TestEveryFieldIsDocumented(t *testing.T) {
	n := 0
	specFields(t, func(path string, f Field) {
		n++
		if strings.TrimSpace(f.Doc) == "" {
			t.Errorf("%s has no doc tag", path)
		}
	})
	if n < 100 {
		t.Fatalf("only %d fields found: the walk misses blocks", n)
	}
}

func TestSpecTagsAreWellFormed(t *testing.T) {
	specFields(t, func(path string, f Field) {
		for tag, s := range map[string]string{"default": f.Default, "min": f.Min, "max": f.Max} {
			if s == "" {
				continue
			}
			if _, err := parseTagValue(s, f.Type); err != nil {
				t.Errorf("%s: %s tag %q does not parse as %s: %v", path, tag, s, f.Type, err)
			}
		}
		if f.Default != "" && len(f.Enum) > 0 && !strings.Contains("|"+strings.Join(f.Enum, "|")+"|", "|"+f.Default+"|") {
			t.Errorf("%s: default %q is not in its enum %v", path, f.Default, f.Enum)
		}
	})
}

// fillSecrets allocates every block of v and sets every secret-tagged
// string, returning how many it set.
func fillSecrets(v reflect.Value) int {
	n := 0
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && isConfigType(v.Type().Elem()) {
			v.Set(reflect.New(v.Type().Elem()))
			n += fillSecrets(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			n += fillSecrets(v.Index(i))
		}
	case reflect.Struct:
		for _, f := range Fields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if f.Secret {
				fv.SetString(fmt.Sprintf("s3cret-%s", f.Key))
				n++
			}
			n += fillSecrets(fv)
		}
	}
	return n
}

func TestSecretTaggedFieldsAreRedactedWherePrinted(t *testing.T) {
	f := &File{Pipelines: make([]Pipeline, 1)}
	n := fillSecrets(reflect.ValueOf(f).Elem())
	if n < 6 {
		t.Fatalf("filled %d secrets; the walk misses blocks", n)
	}
	out := f.YAML()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("a secret is printed:\n%s", out)
	}
	if got := strings.Count(out, Redacted); got != n {
		t.Fatalf("%d secrets redacted, want %d:\n%s", got, n, out)
	}
	if md := Markdown(); strings.Count(md, "Secret: redacted when printed") < 5 {
		t.Fatal("docs do not mark the secrets")
	}
}

// TestPrintedDefaultsAreTheEffectiveOnes: validate --print shows what the
// sinks run with, not 0 for settings whose default the engine chose.
func TestPrintedDefaultsAreTheEffectiveOnes(t *testing.T) {
	tests := []struct{ sink, want string }{
		{"postgres: {dsn: postgres://u@h/d, table: t}", "writers: 2"},
		{"mysql: {dsn: u@tcp(h)/d, table: t}", "writers: 2"},
		{"sqlite: {path: x.db, table: t}", "writers: 1"},
		{"postgres: {dsn: postgres://u@h/d, table: t, max_connections: 1}", "writers: 1"},
		{"postgres: {dsn: postgres://u@h/d, table: t}", "max_columns: 1500"},
		{"kafka: {brokers: [b:9092], topic: o}", "batch_bytes: 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			f, err := Parse([]byte("name: x\nsource: {kafka: {brokers: [b:9092], topics: [t], group: g}}\nsink: {"+tt.sink+"}\n"), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			out := f.YAML()
			for _, want := range []string{tt.want, "max_records: 10000", "linger: 50ms", "consumers: 1", "max_in_flight_bytes: 67108864"} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
		})
	}
}
