package transform

import (
	"strings"
	"testing"
)

// With a reader schema, validate names a field an expression reads that
// no record has at that step, with its position; fields made, removed or
// moved by earlier steps count.
func TestCheckFieldsAgainstTheReaderSchema(t *testing.T) {
	fields := map[string]bool{"id": true, "kind": true, "amount": true, "note": true}
	steps := []Step{
		{Filter: `value.kind != "test" && value.amout > 0.0`},
		{Set: map[string]string{"cents": "int(value.amount * 100.0)"}},
		{Drop: []string{"note"}},
		{Rename: map[string]string{"kind": "type"}},
		{Headers: map[string]string{"c": "string(value.cents) + value.note", "t": "value.type"}},
		{Key: `has(value.maybe) ? value.maybe : value.kind`},
	}
	routes := []Route{{When: `value.type == "order"`, Sink: "a"}, {Sink: "b"}}
	probs := CheckFields(steps, routes, fields)
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{
		`transforms[0].filter: value has no field "amout" here`,
		`(at 1:25 in "value.kind != \"test\" && value.amout > 0.0")`,
		`transforms[4].headers.c: value has no field "note" here`,
		`transforms[5].key: value has no field "kind" here`,
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problems lack %q:\n%s", w, all)
		}
	}
	if len(probs) != 3 {
		t.Errorf("%d problems, want 3:\n%s", len(probs), all)
	}
	if CheckFields(steps, routes, nil) != nil {
		t.Error("problems without a schema")
	}
}
