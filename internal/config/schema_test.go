package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestGeneratedReferenceIsCurrent fails when docs/config.md or
// docs/sluice.schema.json no longer match the config structs.
func TestGeneratedReferenceIsCurrent(t *testing.T) {
	for file, want := range map[string]string{"config.md": Markdown(), "sluice.schema.json": string(JSONSchema())} {
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("docs/%s is stale; regenerate it from the module root:\n  %s", file, Regenerate)
		}
	}
}

// schemaCheck validates v against the subset of JSON Schema that
// JSONSchema emits, returning each violation with its path.
type schemaCheck struct{ defs map[string]any }

func (c schemaCheck) check(s map[string]any, v any, path string) []string {
	var probs []string
	if ref, ok := s["$ref"].(string); ok {
		return c.check(c.defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any), v, path)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			probs = append(probs, c.check(sub.(map[string]any), v, path)...)
		}
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var first []string
		for i, sub := range alts {
			p := c.check(sub.(map[string]any), v, path)
			if len(p) == 0 {
				first = nil
				break
			}
			if i == 0 {
				first = p
			}
		}
		probs = append(probs, first...)
	}
	if enum, ok := s["enum"].([]any); ok && !containsValue(enum, v) {
		probs = append(probs, fmt.Sprintf("%s: %v is not in %v", path, v, enum))
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return append(probs, path+": not an object")
		}
		props, _ := s["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if ps, ok := props[k]; ok {
				probs = append(probs, c.check(ps.(map[string]any), m[k], join(path, k))...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				probs = append(probs, c.check(ap, m[k], join(path, k))...)
			} else if s["additionalProperties"] == false {
				probs = append(probs, join(path, k)+": not allowed")
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return append(probs, path+": not an array")
		}
		for i, item := range l {
			probs = append(probs, c.check(s["items"].(map[string]any), item, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(probs, fmt.Sprintf("%s: %v is not a string", path, v))
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			probs = append(probs, fmt.Sprintf("%s: %q does not match %s", path, str, p))
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok || (s["type"] == "integer" && n != float64(int64(n))) {
			return append(probs, fmt.Sprintf("%s: %v is not an %s", path, v, s["type"]))
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			probs = append(probs, fmt.Sprintf("%s: %v is below %v", path, n, lo))
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			probs = append(probs, fmt.Sprintf("%s: %v is above %v", path, n, hi))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			probs = append(probs, fmt.Sprintf("%s: %v is not a boolean", path, v))
		}
	}
	return probs
}

func containsValue(enum []any, v any) bool {
	for _, e := range enum {
		if e == v {
			return true
		}
	}
	return false
}

// validateWithSchema checks a YAML file as an editor would: as JSON.
func validateWithSchema(t *testing.T, data []byte) []string {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal(JSONSchema(), &schema); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc) // YAML numbers become JSON numbers, as for the editor
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	return schemaCheck{defs: schema["definitions"].(map[string]any)}.check(schema, v, "")
}

// TestSchemaAcceptsTheExamples: every pipeline file the project ships (the
// examples, and the README's complete pipelines) passes the schema an
// editor checks it with.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	docs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = data
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		if _, err := Parse(block[1], func(string) (string, bool) { return "1", true }); err == nil {
			docs[fmt.Sprintf("README.md yaml block %d", i)] = block[1]
		}
	}
	if len(docs) < 3 {
		t.Fatalf("only %d files to check", len(docs))
	}
	for name, data := range docs {
		if probs := validateWithSchema(t, data); len(probs) > 0 {
			t.Errorf("%s does not pass the schema:\n  %s", name, strings.Join(probs, "\n  "))
		}
	}
}

func TestSchemaRefusesWhatValidateRefuses(t *testing.T) {
	probs := validateWithSchema(t, []byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g, consumers: 300, start_form: latest}}
delivery: twice
batch: {linger: soon}
sink: {postgres: {dsn: "${DSN}", table: t, writers: "${WRITERS}", create_table: "yes"}}
`))
	want := []string{"source.kafka.consumers: 300 is above 256", "source.kafka.start_form: not allowed", "delivery: twice is not in", `batch.linger: "soon" does not match`, "sink.postgres.create_table: yes is not a boolean"}
	got := strings.Join(probs, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(probs) != len(want) {
		t.Errorf("want %d problems (an ${ENV} number is fine), got:\n%s", len(want), got)
	}
}
