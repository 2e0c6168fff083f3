package transform

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// outcome is what a user sees of one record after the transforms and the
// sink's JSON encoder: kept or not, the error, the value decoded again
// (member order aside), the key and headers.
type outcome struct {
	keep    bool
	err     string
	value   map[string]any
	key     string
	headers []connector.Header
}

func runMapPath(t *testing.T, c *Chain, value []byte) outcome {
	t.Helper()
	r := &connector.Record{Topic: "events", Key: []byte("k1"), Value: value, Headers: []connector.Header{{Key: "h", Value: []byte("v")}}}
	// The pipeline's decoder for format {value: json}.
	dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(context.Background(), r); err != nil {
		return finish(t, r, false, err)
	}
	keep, err := c.Transform(r)
	return finish(t, r, keep, err)
}

func runJSONPath(t *testing.T, c *Chain, value []byte) (outcome, bool) {
	t.Helper()
	r := &connector.Record{Topic: "events", Key: []byte("k1"), Value: value, Headers: []connector.Header{{Key: "h", Value: []byte("v")}}}
	keep, err := c.TransformJSON(r)
	fast := r.Fields == nil // the map path decodes into Fields
	return finish(t, r, keep, err), fast
}

func finish(t *testing.T, r *connector.Record, keep bool, err error) outcome {
	t.Helper()
	o := outcome{keep: keep, key: string(r.Key), headers: r.Headers}
	if err != nil {
		o.err = err.Error()
		return o
	}
	if !keep {
		return o
	}
	enc, err := codec.JSONEncoder{}.Encode(context.Background(), "out", r)
	if err != nil {
		o.err = err.Error()
		return o
	}
	if o.value, err = decodeForTest(enc); err != nil {
		t.Fatalf("the encoded value %q does not decode: %v", enc, err)
	}
	return o
}

func decodeForTest(b []byte) (map[string]any, error) {
	r := &connector.Record{Value: b}
	err := (codec.JSON{}).Decode(context.Background(), r)
	return r.Fields, err
}

// diffChains are chains of every step kind the fast path takes.
var diffChains = [][]Step{
	{{Filter: `value.kind != "test"`}, {Set: map[string]string{"total_cents": `int(value.amount * 100.0)`, "country": `value.country.upperAscii()`}}},
	{{Set: map[string]string{"kind": `value.kind + "!"`, "new": `has(value.nested) ? value.nested.a : "none"`}}, {Drop: []string{"amount", "missing"}}},
	{{Rename: map[string]string{"kind": "type", "country": "kind", "nope": "x"}}, {Set: map[string]string{"after": `value.kind`}}},
	{{Mask: map[string]string{"country": "sha256", "amount": "sha256", "nested": "redact", "z": "redact"}}},
	{{Set: map[string]string{"copy": `value.nested`, "list": `value.list`}}, {Drop: []string{"nested"}}},
	{{Key: `value.kind`}, {Headers: map[string]string{"c": `value.country`}}, {Set: map[string]string{"amount": `value.amount`}}},
	{{Filter: `value.amount > 10`}, {Drop: []string{"kind"}}, {Set: map[string]string{"kind": `"again"`}}},
	{{Set: map[string]string{"bad": `value.amount / 0.0`}}},                 // +Inf: the encoder refuses it
	{{Set: map[string]string{"u": `value.s + "é"`, "esc": `value.esc`}}},    // strings with escapes and non-ASCII
	{{Set: map[string]string{"n": `value.big`, "neg": `value.neg0`}}},       // numbers kept as written
	{{Drop: []string{"kind"}}, {Set: map[string]string{"k": `value.kind`}}}, // a dropped field is missing
	// Set fields read, renamed and masked by later steps; null and bool set.
	{{Set: map[string]string{"s2": `value.kind + "x"`, "n2": `value.amount`, "z": `null`, "b": `value.kind == "v"`}},
		{Rename: map[string]string{"s2": "s3"}}, {Mask: map[string]string{"n2": "sha256"}}, {Set: map[string]string{"s4": `value.s3 + string(value.b)`}}},
	// Field reads boxed from the record's slab: the same field read
	// twice, ints past the runtime's small-value boxes, doubles, and more
	// reads than the slab's first slice holds; results set and read again.
	{{Set: map[string]string{"id2": `value.id + value.id`, "id": `value.id`, "a2": `value.amount + value.amount`, "big": `value.id * 1000`}},
		{Set: map[string]string{"all": `value.kind + value.country + value.kind + value.country + value.kind + value.country + value.kind + value.country + value.kind + string(value.id2)`}}},
	// upperAscii and lowerAscii (asciiCaseOverloads) on every kind of string.
	{{Set: map[string]string{"up": `value.country.upperAscii()`, "low": `value.kind.lowerAscii()`, "s": `value.kind.upperAscii().lowerAscii()`}}},
}

var diffValues = []string{
	`{"kind":"click","amount":12.25,"country":"de"}`,
	`{"kind":"test","amount":1,"country":"fr"}`,
	`{"kind":"view","amount":-3,"country":"","nested":{"a":"x","b":[1,{"c":null}]},"list":[1,"two",3.5]}`,
	` { "kind" : "view" , "amount" : 7 , "country" : "nl" , "nested" : { "a" : "y" , "a" : "z" } } `,
	`{"kind":"a<b>&c","amount":100,"country":"\u00e9t\u00e9","esc":"line\nbreak \"q\" \ud83d\ude00","s":"日本"}`,
	`{"kind":"v","amount":1e2,"country":"us","big":123456789012345678901234567890,"neg0":-0}`,
	`{"kind":"Sale Of A Rather Long Name, More Than 24","amount":0.1,"country":"dE","id":1000}`,
	`{"kind":"ÉTÉ été","amount":-2.5e-3,"country":"straße","id":-300}`,
	`{"kind":"v","amount":true,"country":"us"}`,                   // amount is no number: a filter or set fails
	`{"kind":"v","country":"us"}`,                                 // amount missing
	`{"amount":5,"kind":"dup","kind":"last","country":"x"}`,       // a repeated key: the map path
	`{"k\u0069nd":"escaped key","amount":5,"country":"x"}`,        // a key with escapes: the map path
	"{\"kind\":\"bad \xff utf8\",\"amount\":5,\"country\":\"x\"}", // invalid UTF-8: the map path
	`{"kind":"v","amount":5,"country":"x"`,                        // bad JSON: the decoder's error
	`[1,2]`,
	`null`,
	`{}`,
}

// TestJSONFastPathMatchesTheMapPath: every chain over every value, through
// the fast path and through decode, Transform and the JSON encoder, gives
// the same records, errors, keys and headers.
func TestJSONFastPathMatchesTheMapPath(t *testing.T) {
	fastRecords := 0
	for i, steps := range diffChains {
		c, err := Compile(steps)
		if err != nil {
			t.Fatal(err)
		}
		if !c.RawJSON() {
			t.Fatalf("chain %d: RawJSON false", i)
		}
		for _, v := range diffValues {
			want := runMapPath(t, c, []byte(v))
			got, fast := runJSONPath(t, c, []byte(v))
			if fast && got.keep {
				fastRecords++
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chain %d on %s:\nfast path %+v\nmap path  %+v", i, v, got, want)
			}
		}
	}
	if fastRecords < 30 {
		t.Errorf("only %d records took the fast path", fastRecords)
	}
}

func TestRawJSONOnlyForTopLevelFieldsReadAsFields(t *testing.T) {
	for _, tc := range []struct {
		steps []Step
		want  bool
	}{
		{[]Step{{Filter: `value.a > 1`}, {Set: map[string]string{"b": `value.a`}}}, true},
		{[]Step{{Filter: `has(value.a)`}, {Drop: []string{"a"}}}, true},
		{[]Step{{Filter: `value.a > 1`}}, false}, // no field step: the sink writes the bytes as they came
		{[]Step{{Set: map[string]string{"b.c": `1`}}}, false},
		{[]Step{{Drop: []string{"a.b"}}}, false},
		{[]Step{{Rename: map[string]string{"a": "b.c"}}}, false},
		{[]Step{{Mask: map[string]string{"a.b": "redact"}}}, false},
		{[]Step{{Set: map[string]string{"n": `size(value)`}}}, false},
		{[]Step{{Set: map[string]string{"n": `value["a"]`}}}, false},
		{[]Step{{Set: map[string]string{"copy": `value`}}}, false},
		{[]Step{{Filter: `"a" in value`}, {Drop: []string{"a"}}}, false},
	} {
		c, err := Compile(tc.steps)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RawJSON(); got != tc.want {
			t.Errorf("%+v: RawJSON = %v, want %v", tc.steps, got, tc.want)
		}
	}
}

// FuzzJSONFastPath: the fast path never panics, and agrees with the map
// path on every record and expression.
func FuzzJSONFastPath(f *testing.F) {
	for _, v := range diffValues {
		f.Add(`value.kind + "x"`, v, "kind")
	}
	f.Add(`value.amount * 2.0`, `{"amount":1.5,"b":{"c":[1,2]}}`, "b")
	f.Add(`has(value.x) ? value.x : 0`, `{"x":null}`, "x")
	f.Add(`value.s.size()`, `{"s":"\u00e9\n"}`, "s")
	f.Fuzz(func(t *testing.T, expr, value, field string) {
		if strings.Contains(field, ".") || field == "" {
			field = "f"
		}
		for _, steps := range [][]Step{
			{{Filter: expr}, {Drop: []string{field}}},
			{{Set: map[string]string{field: expr}}},
			{{Set: map[string]string{"out": expr}}, {Rename: map[string]string{field: "renamed"}}},
			{{Mask: map[string]string{field: "sha256"}}, {Key: expr}},
		} {
			c, err := Compile(steps)
			if err != nil || !c.RawJSON() {
				continue
			}
			want := runMapPath(t, c, []byte(value))
			got, _ := runJSONPath(t, c, []byte(value))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%v on %q:\nfast path %+v\nmap path  %+v", steps, value, got, want)
			}
		}
	})
}
