package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// record builds a decoded JSON record as the codec would (numbers as
// json.Number).
func record(t *testing.T, value string) *connector.Record {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(value))
	d.UseNumber()
	var fields map[string]any
	if err := d.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	return &connector.Record{
		Topic: "orders", Partition: 3, Offset: 42,
		Timestamp: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Key:       []byte("user-1"), Value: []byte(value), Fields: fields,
		Headers: []connector.Header{{Key: "source", Value: []byte("app")}, {Key: "trace", Value: []byte("t1")}},
		Schema:  &connector.Schema{Name: "com.example.Order"},
	}
}

func mustCompile(t *testing.T, steps ...Step) *Chain {
	t.Helper()
	c, err := Compile(steps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFilterKeepsAndDrops(t *testing.T) {
	cases := []struct {
		expr string
		keep bool
	}{
		{`value.kind != "test" && value.amount > 0`, true},
		{`value.kind == "test"`, false},
		{`value.amount > 100`, false},
		{`topic == "orders" && partition == 3 && offset == 42`, true},
		{`key == "user-1" && headers.source == "app"`, true},
		{`timestamp > timestamp("2026-12-01T00:00:00Z")`, true},
		{`schema == "com.example.Order"`, true},
		{`has(value.note)`, false},
		{`value.card.number.startsWith("4111")`, true},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			c := mustCompile(t, Step{Filter: tc.expr})
			keep, err := c.Transform(record(t, `{"kind":"sale","amount":12.5,"card":{"number":"4111-1111"}}`))
			if err != nil {
				t.Fatal(err)
			}
			if keep != tc.keep {
				t.Errorf("keep = %v, want %v", keep, tc.keep)
			}
		})
	}
}

func TestFieldStepsReshapeTheValue(t *testing.T) {
	c := mustCompile(t,
		Step{Set: map[string]string{
			"total_cents": `int(double(value.amount) * 100.0)`,
			"country":     `value.country.upperAscii()`,
			"meta.seen":   `topic + "/" + string(offset)`,
			"tags":        `["a", value.kind]`,
		}},
		Step{Drop: []string{"note", "card.cvv", "absent.field"}},
		Step{Rename: map[string]string{"uid": "user_id", "nothere": "x"}},
		Step{Mask: map[string]string{"card.number": "sha256", "email": "redact", "gone": "sha256"}},
	)
	r := record(t, `{"kind":"sale","amount":12.5,"country":"fr","note":"hi","uid":7,"email":"a@b.c","card":{"number":"4111","cvv":"123"}}`)
	keep, err := c.Transform(r)
	if err != nil || !keep {
		t.Fatalf("keep=%v err=%v", keep, err)
	}
	sum := sha256.Sum256([]byte("4111"))
	want := map[string]any{
		"kind": "sale", "amount": json.Number("12.5"), "country": "FR",
		"total_cents": int64(1250), "user_id": json.Number("7"), "email": "***",
		"card": map[string]any{"number": hex.EncodeToString(sum[:])},
		"meta": map[string]any{"seen": "orders/42"},
		"tags": []any{"a", "sale"},
	}
	if !reflect.DeepEqual(r.Fields, want) {
		t.Errorf("fields:\n got %#v\nwant %#v", r.Fields, want)
	}
	if r.Schema != nil {
		t.Error("a reshaped record kept the codec's schema, which no longer describes it")
	}
	if string(r.Value) == "" {
		t.Error("the original bytes were lost")
	}
}

func TestSetSeesTheRecordBeforeTheStep(t *testing.T) {
	c := mustCompile(t, Step{Set: map[string]string{"a": `value.b`, "b": `value.a`}})
	r := record(t, `{"a":"A","b":"B"}`)
	if _, err := c.Transform(r); err != nil {
		t.Fatal(err)
	}
	if r.Fields["a"] != "B" || r.Fields["b"] != "A" {
		t.Errorf("swap gave %v", r.Fields)
	}
}

func TestSetCopiesRecords(t *testing.T) {
	c := mustCompile(t, Step{Set: map[string]string{"copy": `value.card`}}, Step{Drop: []string{"copy.number"}})
	r := record(t, `{"card":{"number":"4111"}}`)
	if _, err := c.Transform(r); err != nil {
		t.Fatal(err)
	}
	if r.Fields["card"].(map[string]any)["number"] != "4111" {
		t.Errorf("dropping from the copy changed the original: %v", r.Fields)
	}
}

func TestKeyAndHeaders(t *testing.T) {
	c := mustCompile(t,
		Step{Key: `string(value.user_id)`},
		Step{Headers: map[string]string{"source": `"web"`, "kind": `value.kind`, "n": `value.n`}},
	)
	r := record(t, `{"user_id":99,"kind":"sale","n":5}`)
	r.KeyFields = map[string]any{"old": "key"}
	if _, err := c.Transform(r); err != nil {
		t.Fatal(err)
	}
	if string(r.Key) != "99" || r.KeyFields != nil {
		t.Errorf("key = %q (fields %v), want 99", r.Key, r.KeyFields)
	}
	got := map[string]string{}
	for _, h := range r.Headers {
		if _, dup := got[h.Key]; dup {
			t.Errorf("header %s twice", h.Key)
		}
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"source": "web", "trace": "t1", "kind": "sale", "n": "5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers = %v, want %v", got, want)
	}
}

func TestHeadersStepIsSeenByTheNextStep(t *testing.T) {
	c := mustCompile(t, Step{Headers: map[string]string{"source": `"web"`}}, Step{Filter: `headers.source == "web"`})
	keep, err := c.Transform(record(t, `{}`))
	if err != nil || !keep {
		t.Fatalf("keep=%v err=%v", keep, err)
	}
}

func TestEvaluationErrorIsTheRecordsProblem(t *testing.T) {
	cases := []struct {
		name  string
		steps []Step
		value string
		want  string
	}{
		{"missing field", []Step{{Filter: `value.amount > 0`}}, `{}`, "transforms[0].filter: no such key: amount"},
		{"type mismatch", []Step{{Set: map[string]string{"x": `value.a + 1`}}}, `{"a":"text"}`, "transforms[0].set.x: no such overload"},
		{"filter not bool", []Step{{Filter: `value.a`}}, `{"a":"text"}`, "transforms[0].filter: gave string, not a bool"},
		{"key of a map", []Step{{Key: `value`}}, `{"a":1}`, "transforms[0].key: gave map"},
		{"set under a scalar", []Step{{Set: map[string]string{"a.b": `1`}}}, `{"a":"text"}`, "field a is a string, not a record"},
		{"second step", []Step{{Key: `"new"`}, {Filter: `value.missing`}}, `{}`, "transforms[1].filter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, tc.steps...)
			r := record(t, tc.value)
			keep, err := c.Transform(r)
			var re *connector.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (keep %v), want a RecordError", err, keep)
			}
			if re.Reason != ReasonTransform || re.Record != r || !strings.Contains(re.Error(), tc.want) {
				t.Errorf("err = %v (reason %q), want reason transform and %q", err, re.Reason, tc.want)
			}
			if string(r.Key) != "user-1" || len(r.Headers) != 2 {
				t.Errorf("a failed record kept its changes: key %q, headers %v", r.Key, r.Headers)
			}
		})
	}
}

func TestFieldStepOnRawValueIsARecordError(t *testing.T) {
	c := mustCompile(t, Step{Drop: []string{"a"}})
	_, err := c.Transform(&connector.Record{Value: []byte("raw")})
	var re *connector.RecordError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "not a record") {
		t.Fatalf("err = %v", err)
	}
}

func TestRawValueIsBytes(t *testing.T) {
	c := mustCompile(t, Step{Filter: `value.size() > 2 && string(value).startsWith("ab")`})
	keep, err := c.Transform(&connector.Record{Value: []byte("abc")})
	if err != nil || !keep {
		t.Fatalf("keep=%v err=%v", keep, err)
	}
}

func TestCheckReportsEveryProblemWithItsPath(t *testing.T) {
	probs := Check([]Step{
		{Filter: `value.kind == "a"`},
		{Filter: `value.kind ==`},
		{Set: map[string]string{"total_cents": `1 + "a"`, "ok": `value.a`, "bad..path": `1`}},
		{Filter: `1 + 2`},
		{},
		{Filter: `true`, Drop: []string{"a"}},
		{Mask: map[string]string{"card": "md5"}},
		{Headers: map[string]string{"h": `nope`}},
	})
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`transforms[1].filter: Syntax error`,
		`(at 1:14 in "value.kind ==")`,
		`transforms[2].set.total_cents: found no matching overload for '_+_' applied to '(int, string)' (at 1:3 in "1 + \"a\"")`,
		`transforms[2].set.bad..path: "bad..path" is not a field path`,
		`transforms[3].filter: must be a bool expression, this one gives int`,
		`transforms[4]: a step needs one of filter, set, drop, rename, mask, key, headers`,
		`transforms[5]: a step does one thing, this one has filter, drop`,
		`transforms[6].mask.card: "md5" is not one of sha256, redact`,
		`transforms[7].headers.h: undeclared reference to 'nope'`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "transforms[0]") || strings.Contains(all, "set.ok") {
		t.Errorf("a good expression was reported:\n%s", all)
	}
}

func TestNoStepsIsNoChain(t *testing.T) {
	c, err := Compile(nil)
	if c != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v", c, err)
	}
}
