// Package transform filters and reshapes decoded records between decode and
// the sink, with steps configured under `transforms:` and expressions in
// Google's Common Expression Language (CEL). Every expression is compiled
// once, when the pipeline file is validated and again when the pipeline is
// built; a record is only evaluated.
//
// An expression sees value (the decoded fields; the bytes for raw values),
// key (the decoded key; the raw key as a string), headers (a map of string
// to string, the last value of each name), topic, partition, offset,
// timestamp and schema (the Avro record name; "" otherwise).
package transform

import (
	"fmt"
	"sort"
	"strings"
)

// Step is one entry of a pipeline's `transforms:` list. Exactly one of its
// keys is set.
type Step struct {
	// Filter keeps the record when the expression is true; a false record
	// is dropped, counted (sluice_records_filtered_total) and acked, so its
	// offset still commits.
	Filter string `yaml:"filter,omitempty"`
	// Set gives each field (a dotted path for nested records) the value
	// of its expression. The expressions of one step all see the record
	// as it was before the step.
	Set map[string]string `yaml:"set,omitempty"`
	// Drop removes fields (dotted paths); a missing field is no error.
	Drop []string `yaml:"drop,omitempty"`
	// Rename moves each field (old: new, dotted paths); a missing field
	// is no error.
	Rename map[string]string `yaml:"rename,omitempty"`
	// Mask replaces each field's value: sha256 (hex of the value, so
	// equal values still join) or redact ("***"). Null stays null.
	Mask map[string]string `yaml:"mask,omitempty"`
	// Key replaces the record's key with the expression's value (a
	// string, bytes, a number, or null).
	Key string `yaml:"key,omitempty"`
	// Headers sets each header (replacing any of the same name) to the
	// expression's value, a string or bytes.
	Headers map[string]string `yaml:"headers,omitempty"`
}

// Mask methods.
const (
	MaskSHA256 = "sha256"
	MaskRedact = "redact"
)

// Problem is one thing wrong with a transforms list, with its field path
// relative to the pipeline (transforms[2].set.total_cents).
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// kinds names the keys a step has set.
func (s *Step) kinds() []string {
	var k []string
	if s.Filter != "" {
		k = append(k, "filter")
	}
	if len(s.Set) > 0 {
		k = append(k, "set")
	}
	if len(s.Drop) > 0 {
		k = append(k, "drop")
	}
	if len(s.Rename) > 0 {
		k = append(k, "rename")
	}
	if len(s.Mask) > 0 {
		k = append(k, "mask")
	}
	if s.Key != "" {
		k = append(k, "key")
	}
	if len(s.Headers) > 0 {
		k = append(k, "headers")
	}
	return k
}

// ChangesFields reports whether any step reshapes the decoded value (set,
// drop, rename or mask), which needs values decoded into fields and a sink
// that writes fields rather than the original bytes.
func ChangesFields(steps []Step) bool {
	for i := range steps {
		s := &steps[i]
		if len(s.Set) > 0 || len(s.Drop) > 0 || len(s.Rename) > 0 || len(s.Mask) > 0 {
			return true
		}
	}
	return false
}

// Check compiles every step and returns its problems, without keeping the
// programs: what `sluice validate` reports.
func Check(steps []Step) []Problem {
	_, probs := compile(steps)
	return probs
}

// splitPath turns "card.number" into its parts, or reports why it is not
// a field path.
func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("empty field name")
	}
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("%q is not a field path (write a or a.b)", p)
		}
	}
	return parts, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Describe names each step and the fields it touches, one line per step
// ("set total_cents, country", "mask card.number (sha256)"), for status
// pages. Expressions are left out: they are part of the configuration,
// which status shows only to whom may see it.
func Describe(steps []Step) []string {
	out := make([]string, 0, len(steps))
	for i := range steps {
		s := &steps[i]
		var parts []string
		if s.Filter != "" {
			parts = append(parts, "filter")
		}
		if len(s.Set) > 0 {
			parts = append(parts, "set "+strings.Join(sortedKeys(s.Set), ", "))
		}
		if len(s.Drop) > 0 {
			parts = append(parts, "drop "+strings.Join(s.Drop, ", "))
		}
		if len(s.Rename) > 0 {
			var r []string
			for _, k := range sortedKeys(s.Rename) {
				r = append(r, k+" -> "+s.Rename[k])
			}
			parts = append(parts, "rename "+strings.Join(r, ", "))
		}
		if len(s.Mask) > 0 {
			var m []string
			for _, k := range sortedKeys(s.Mask) {
				m = append(m, k+" ("+s.Mask[k]+")")
			}
			parts = append(parts, "mask "+strings.Join(m, ", "))
		}
		if s.Key != "" {
			parts = append(parts, "key")
		}
		if len(s.Headers) > 0 {
			parts = append(parts, "headers "+strings.Join(sortedKeys(s.Headers), ", "))
		}
		out = append(out, strings.Join(parts, "; "))
	}
	return out
}
