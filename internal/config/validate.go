package config

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// validator collects problems under a field-path prefix.
type validator struct {
	prefix string
	probs  []string
	parent *validator
	// valueFields, on the root, are the fields records' values have when
	// known (format.reader_schema): templates may name only those.
	valueFields map[string]bool
}

func (v *validator) root() *validator {
	for v.parent != nil {
		v = v.parent
	}
	return v
}

func (v *validator) sub(key string) *validator {
	return &validator{prefix: v.prefix + key + ".", parent: v}
}

func (v *validator) add(field, msg string) {
	r := v.root()
	r.probs = append(r.probs, fmt.Sprintf("%s%s: %s", v.prefix, field, msg))
}

func (v *validator) required(field, value string) {
	if value == "" {
		v.add(field, "is required")
	}
}

func (v *validator) positiveDuration(field string, d time.Duration) {
	if d <= 0 {
		v.add(field, "must be a positive duration such as 500ms or 30s")
	}
}

func (v *validator) oneOf(field, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add(field, fmt.Sprintf("%q is not one of %s", value, strings.Join(allowed, ", ")))
}

// template checks that s parses as a record template (topics, table names)
// and uses only the names a record has.
func (v *validator) template(field, s string) {
	if s == "" {
		return
	}
	t, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		v.add(field, fmt.Sprintf("bad template: %v", err))
		return
	}
	if unknown := unknownTemplateNames(t, v.root().valueFields); len(unknown) > 0 {
		v.add(field, fmt.Sprintf("template uses %s, which a record does not have; known: %s (and the reader schema's fields under .Value)", strings.Join(unknown, ", "), recordTemplateNameList()))
	}
}
