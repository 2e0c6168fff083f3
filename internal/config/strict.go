package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func typeOf(v any) reflect.Type { return reflect.TypeOf(v) }

// checkKeys walks a YAML node beside the Go type it will decode into and
// reports, with its field path and line, every mapping key the type does
// not have (suggesting the closest known one) and every value that cannot
// decode into its field's type, so a typo anywhere in the file is named at
// once. lines collects the lines of the type problems, whose bare
// yaml.v3 messages are then dropped.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]bool) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if msg := typeMismatch(n, t); msg != "" {
		lines[n.Line] = true
		return []string{fmt.Sprintf("%s: %s (line %d)", path, msg, n.Line)}
	}
	var probs []string
	switch t.Kind() {
	case reflect.Struct:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			p := join(path, k.Value)
			if !ok {
				probs = append(probs, fmt.Sprintf("%s: unknown key (line %d); %sknown keys: %s", p, k.Line, suggest(k.Value, fields), knownList(fields)))
				continue
			}
			probs = append(probs, checkKeys(v, ft, p, lines)...)
		}
	case reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			probs = append(probs, checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), lines)...)
		}
	case reflect.Slice:
		for i, item := range n.Content {
			probs = append(probs, checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines)...)
		}
	}
	return probs
}

var yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// typeMismatch says why n cannot decode into t, or "".
func typeMismatch(n *yaml.Node, t reflect.Type) string {
	want := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) && n.Decode(reflect.New(t).Interface()) == nil {
		return "" // a type that decodes itself may take other shapes
	}
	switch t.Kind() {
	case reflect.Interface:
		return ""
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Sprintf("expects a mapping of keys, not %s", describeNode(n))
		}
		return ""
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Sprintf("expects a list such as [a, b], not %s", describeNode(n))
		}
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Sprintf("expects %s, not %s", scalarName(t), want[n.Kind])
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return fmt.Sprintf("%s is not %s", describeNode(n), scalarName(t))
	}
	return ""
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// scalarName is how an error names what a field takes.
func scalarName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 500ms, 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a string"
}

// suggest names the known key closest to key, when one is close enough to
// be a typo of it.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", len(key)/3+2
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if d := levenshtein(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %s? ", best)
}

// levenshtein is the edit distance between a and b (bytes: keys are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlFields maps the YAML keys a struct accepts (following inline
// embedding) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func knownList(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
