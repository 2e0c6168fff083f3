package config

import (
	"encoding/json"
	"reflect"
	"strings"
)

// SchemaID is where the published schema lives, for the editor line
// `# yaml-language-server: $schema=...`.
const SchemaID = "https://raw.githubusercontent.com/sluice-dev/sluice/main/docs/sluice.schema.json"

// envReference is a value that is one ${ENV} reference, allowed wherever
// a number, a boolean or one of a list of words is: it is expanded after
// the YAML is parsed.
var envReference = map[string]any{"type": "string", "pattern": `^\$\{[^}]+\}$`}

// durationPattern is what time.ParseDuration accepts, in practice.
const durationPattern = `^(0|[-+]?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+|\$\{[^}]+\})$`

// JSONSchema renders the JSON Schema (draft-07) of a pipeline file, for
// editors (yaml-language-server) and checks, from the field specs.
func JSONSchema() []byte {
	defs := map[string]any{}
	top := objectSchema(reflect.TypeOf(Pipeline{}), defs)
	props := top["properties"].(map[string]any)
	for _, f := range Fields(reflect.TypeOf(File{})) {
		props[f.Key] = fieldSchema(f, defs)
	}
	defs["Pipeline"] = objectSchema(reflect.TypeOf(Pipeline{}), defs)
	schema := map[string]any{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"$id":                  SchemaID,
		"title":                "Sluice pipeline file",
		"description":          "One pipeline at the top level, or several under pipelines. See docs/config.md.",
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
		"definitions":          defs,
	}
	b, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		panic(err) // maps of strings, numbers and booleans always marshal
	}
	return append(b, '\n')
}

// objectSchema is the schema of a struct's mapping: its keys, and no others.
func objectSchema(t reflect.Type, defs map[string]any) map[string]any {
	props := map[string]any{}
	for _, f := range Fields(t) {
		props[f.Key] = fieldSchema(f, defs)
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func fieldSchema(f Field, defs map[string]any) map[string]any {
	s := typeSchema(f.Type, defs)
	if len(f.Enum) > 0 {
		if f.Type.Kind() == reflect.Slice {
			s["items"] = map[string]any{"enum": f.Enum}
		} else {
			s = map[string]any{"anyOf": []any{map[string]any{"enum": f.Enum}, envReference}}
		}
	}
	if f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64 && f.Type != durationType {
		if f.Min != "" {
			m, _ := parseTagValue(f.Min, f.Type)
			s["anyOf"].([]any)[0].(map[string]any)["minimum"] = m.Int()
		}
		if f.Max != "" {
			m, _ := parseTagValue(f.Max, f.Type)
			s["anyOf"].([]any)[0].(map[string]any)["maximum"] = m.Int()
		}
	}
	desc := describe(f)
	if desc != "" {
		s["description"] = strings.ReplaceAll(desc, "`", "")
	}
	if f.Default != "" {
		if v, err := parseTagValue(f.Default, f.Type); err == nil && f.Type != durationType {
			s["default"] = v.Interface()
		} else {
			s["default"] = f.Default
		}
	}
	return s
}

// typeSchema is the schema of a Go type as YAML spells it.
func typeSchema(t reflect.Type, defs map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return map[string]any{"anyOf": []any{map[string]any{"type": "string", "pattern": durationPattern}, map[string]any{"type": "integer"}}}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"anyOf": []any{map[string]any{"type": "boolean"}, envReference}}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, envReference}}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return map[string]any{"anyOf": []any{map[string]any{"type": "number"}, envReference}}
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), defs)}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), defs)}
	case t.Kind() == reflect.Struct:
		name := t.Name()
		if !isConfigType(t) {
			name = strings.ReplaceAll(t.String(), ".", "_")
		}
		if _, ok := defs[name]; !ok {
			defs[name] = map[string]any{} // a placeholder against recursion
			defs[name] = objectSchema(t, defs)
		}
		return map[string]any{"allOf": []any{map[string]any{"$ref": "#/definitions/" + name}}}
	}
	return map[string]any{}
}
