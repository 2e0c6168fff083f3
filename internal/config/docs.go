package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Regenerate is the command that writes the generated reference files,
// named by the test that fails when they are stale.
const Regenerate = "go run ./cmd/sluice config docs > docs/config.md && go run ./cmd/sluice config schema > docs/sluice.schema.json"

// block is one section of the reference: a config struct at a path.
type block struct {
	path   string // "" for the top level
	title  string
	fields []Field
}

// blocks lists the top level and every config struct reachable from it,
// depth first, each struct type once (later places refer to the first),
// and the path each struct type is described at.
func blocks() ([]block, map[reflect.Type]string) {
	top := append(Fields(reflect.TypeOf(Pipeline{})), Fields(reflect.TypeOf(File{}))...)
	out := []block{{title: "Top level: a pipeline", fields: top}}
	seen := map[reflect.Type]string{}
	var walk func(path string, fields []Field)
	walk = func(path string, fields []Field) {
		for _, f := range fields {
			t, p := blockType(f.Type), join(path, f.Key)
			if t == nil || f.Key == "pipelines" {
				continue
			}
			if f.Type.Kind() == reflect.Map {
				p += ".NAME"
			}
			if _, ok := seen[t]; ok {
				continue
			}
			seen[t] = p
			fs := Fields(t)
			out = append(out, block{path: p, title: "`" + p + "`", fields: fs})
			walk(p, fs)
		}
	}
	walk("", top)
	return out, seen
}

// blockType is the config struct a field holds (through pointers, lists
// and maps), or nil.
func blockType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || !isConfigType(t) {
		return nil
	}
	return t
}

// Markdown renders the configuration reference (docs/config.md).
func Markdown() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from the config structs (internal/config) by ` + "`sluice config docs`" + `; do not edit.
     Regenerate: ` + Regenerate + ` -->

A file holds one pipeline at the top level, or a list of them under
` + "`pipelines:`" + `. Unknown keys are errors (with the closest known key
suggested). Durations are written ` + "`500ms`, `30s`, `5m`" + `; sizes are in bytes.
Any value may be an environment reference, ` + "`${NAME}`, `${NAME:-default}`" + ` or
` + "`${NAME:?message}`" + `. Secrets are redacted wherever config is printed
(` + "`sluice validate --print`" + `, the admin API, logs).

For completion and checks in your editor (VS Code with the YAML extension,
or any editor using yaml-language-server), start the file with

    # yaml-language-server: $schema=https://raw.githubusercontent.com/sluice-dev/sluice/main/docs/sluice.schema.json

(or a path to your copy of ` + "`docs/sluice.schema.json`" + `, which ` + "`sluice config schema`" + ` prints).
`)
	bls, paths := blocks()
	for _, bl := range bls {
		fmt.Fprintf(&b, "\n## %s\n\n| key | type | default | description |\n| --- | --- | --- | --- |\n", bl.title)
		rows := append(plainFirst(bl.fields, false), plainFirst(bl.fields, true)...)
		for _, f := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Key, typeName(f.Type, paths, join(bl.path, f.Key)), cell(defaultText(f)), cell(describe(f)))
		}
	}
	return b.String()
}

func plainFirst(fields []Field, advanced bool) []Field {
	var out []Field
	for _, f := range fields {
		if f.Advanced == advanced {
			out = append(out, f)
		}
	}
	return out
}

// typeName is how the reference names a field's type.
// here is the field's path: a block described right below is a "mapping",
// one described elsewhere names where.
func typeName(t reflect.Type, paths map[reflect.Type]string, here string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem(), paths, here)
	case t.Kind() == reflect.Map:
		return "map of names to " + typeName(t.Elem(), paths, here+".NAME")
	case t == reflect.TypeOf(Pipeline{}):
		return "pipeline (the top-level keys)"
	case t.Kind() == reflect.Struct && isConfigType(t) && paths[t] == here:
		return "mapping"
	case t.Kind() == reflect.Struct && isConfigType(t):
		return "mapping as `" + paths[t] + "`"
	case t.Kind() == reflect.Struct:
		return "mapping"
	case t.Kind() == reflect.Interface:
		return "any"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.String:
		return "string"
	}
	return strings.TrimPrefix(scalarName(t), "an ")
}

func defaultText(f Field) string {
	if f.Default == "" {
		return ""
	}
	d := "`" + f.Default + "`"
	if v, err := parseTagValue(f.Default, f.Type); err == nil && v.Kind() == reflect.Int && fmt.Sprint(v.Int()) != f.Default {
		d = fmt.Sprintf("`%d` (%s)", v.Int(), f.Default)
	}
	return d
}

// describe is a field's description with what its tags add.
func describe(f Field) string {
	parts := []string{f.Doc}
	if len(f.Enum) > 0 {
		parts = append(parts, "One of `"+strings.Join(f.Enum, "`, `")+"`.")
	}
	switch {
	case f.Min != "" && f.Max != "":
		parts = append(parts, fmt.Sprintf("From %s to %s.", f.Min, f.Max))
	case f.Min != "" && f.Type != durationType:
		parts = append(parts, fmt.Sprintf("At least %s.", f.Min))
	case f.Min != "":
		parts = append(parts, "Positive.")
	}
	if f.ZeroRefused {
		parts = append(parts, "0 is refused.")
	}
	if f.Example != "" {
		parts = append(parts, "Example: `"+f.Example+"`.")
	}
	if f.Secret {
		parts = append(parts, "Secret: redacted when printed; write `${ENV}`.")
	}
	if f.Advanced {
		parts = append(parts, "(advanced)")
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
