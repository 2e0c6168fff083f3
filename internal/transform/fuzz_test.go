package transform

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// FuzzTransform checks that no expression over any record panics: an
// expression that cannot be applied is the record's problem, never a crash;
// and that the native forms of expressions (native.go) change nothing a
// user sees: each chain gives the same records, errors, keys and headers
// evaluated by CEL alone, on the map path and on the JSON fast path.
func FuzzTransform(f *testing.F) {
	f.Add(`value.kind != "test" && value.amount > 0`, `{"kind":"sale","amount":3}`, "a.b")
	f.Add(`value.items.map(x, x * 2)`, `{"items":[1,2,3]}`, "items")
	f.Add(`int(value.amount * 100.0)`, `{"amount":1.5e308}`, "amount")
	f.Add(`value.s.upperAscii() + string(value.n)`, `{"s":"é","n":null}`, "s.t.u")
	f.Add(`headers.x + key`, `[1,2]`, "x")
	f.Add(`value.a + 1 > value.b ? int(value.c * 2.0) : -1`, `{"a":9223372036854775807,"b":1,"c":1e300}`, "a")
	f.Add(`value.s.lowerAscii() == "x" || value.n / 0 == 1`, `{"s":"X","n":3}`, "s")
	f.Fuzz(func(t *testing.T, expr, value, field string) {
		for _, steps := range [][]Step{
			{{Filter: expr}},
			{{Set: map[string]string{"out": expr}}},
			{{Key: expr}},
			{{Headers: map[string]string{"h": expr}}},
			{{Drop: []string{field}}, {Rename: map[string]string{field: "x." + field}}, {Mask: map[string]string{field: "sha256"}}},
			{{Set: map[string]string{field: expr}}},
		} {
			// The reader-schema check walks any expression that parses.
			CheckFields(steps, []Route{{When: expr, Sink: "a"}, {Sink: "b"}}, map[string]bool{field: true})
			c, err := Compile(steps)
			if err != nil {
				continue
			}
			r := &connector.Record{Topic: "t", Key: []byte("k"), Value: []byte(value)}
			d := json.NewDecoder(strings.NewReader(value))
			d.UseNumber()
			var fields map[string]any
			if d.Decode(&fields) == nil {
				r.Fields = fields
			}
			_, err = c.Transform(r)
			if err != nil {
				if re, ok := err.(*connector.RecordError); !ok || re.Reason != ReasonTransform {
					t.Fatalf("%v: error %v is not a transform RecordError", steps, err)
				}
			}
			cel := celOnly(c)
			if got, want := runMapPath(t, c, []byte(value)), runMapPath(t, cel, []byte(value)); !reflect.DeepEqual(got, want) {
				t.Fatalf("%v on %q, map path:\nnative %+v\nCEL    %+v", steps, value, got, want)
			}
			if c.RawJSON() {
				got, _ := runJSONPath(t, c, []byte(value))
				want, _ := runJSONPath(t, cel, []byte(value))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%v on %q, fast path:\nnative %+v\nCEL    %+v", steps, value, got, want)
				}
			}
		}
	})
}
