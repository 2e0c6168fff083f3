package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// celOnly is c with every native form removed: what c gives when each
// expression is evaluated by CEL.
func celOnly(c *Chain) *Chain {
	out := &Chain{rawJSON: c.rawJSON, steps: append([]step(nil), c.steps...)}
	for i := range out.steps {
		s := &out.steps[i]
		s.expr.native = nil
		s.exprs = append([]namedProgram(nil), s.exprs...)
		for j := range s.exprs {
			s.exprs[j].expr.native = nil
		}
	}
	return out
}

// nativeExprs are expressions in the native subset: the benchmark's, every
// operator, and the edges where CEL gives an error or a surprise.
var nativeExprs = []string{
	// The benchmark.
	`value.kind != "test" && value.amount > 0`,
	`value.kind != "test"`,
	`int(value.amount * 100.0)`,
	`value.country.upperAscii()`,
	// Literals and field reads.
	`1`, `-7`, `2.5`, `-0.0`, `"é"`, `true`, `null`, `value.a`, `value.s`, `has(value.a)`, `has(value.missing)`,
	// Comparisons, same and mixed types.
	`value.a == value.b`, `value.a != value.b`, `value.a < value.b`, `value.a <= value.b`, `value.a > value.b`, `value.a >= value.b`,
	`value.s < value.t`, `value.s == value.t`, `value.s >= "m"`, `value.f == true`, `value.f < true`,
	`value.a == null`, `value.a != null`, `null == null`, `value.s == 1`, `value.a == 1.0`, `value.a > 0`, `value.a < 0.5`,
	`value.a == 9007199254740993`, `value.a < 9223372036854775807`, `value.a > -9.3e18`,
	// Logic, with operands that are errors or not bools.
	`value.a > 0 && value.s == "x"`, `value.a > 0 || value.s == "x"`, `!(value.a > 0)`, `!value.f`,
	`value.missing > 0 && false`, `false && value.missing > 0`, `value.missing > 0 || true`, `true || value.missing`,
	`value.missing > 0 && true`, `value.s && false`, `value.s || value.f`, `!value.s`,
	`value.a > 0 ? value.s : "none"`, `value.f ? 1 : value.a`, `has(value.a) ? value.a : 0`,
	// Arithmetic: int overflow and division by zero are CEL errors.
	`value.a + value.b`, `value.a - value.b`, `value.a * value.b`, `value.a / value.b`, `value.a % value.b`, `-value.a`,
	`value.a + 1`, `value.a * 100`, `value.a - 9223372036854775807`, `value.a / 0`, `value.a % 0`, `value.a * -1`,
	`value.a + 0.5`, `value.a * 100.0`, `value.a / 0.0`, `-value.a / 0.0`, `value.a * 1e308 * 10.0 - value.a * 1e308 * 10.0`,
	`(value.a * 1e308 * 10.0 - value.a * 1e308 * 10.0) == (value.a * 1e308 * 10.0 - value.a * 1e308 * 10.0)`,
	`(value.a * 1e308 * 10.0 - value.a * 1e308 * 10.0) < 1.0`, `(value.a * 1e308 * 10.0 - value.a * 1e308 * 10.0) != value.b`,
	`value.s + value.t`, `value.s + "!"`,
	// Conversions and strings.
	`int(value.a)`, `int(value.a * 1.0)`, `int(value.a * 1e10)`, `double(value.a)`, `int(-0.0)`, `int(9.2e18)`, `int(value.a * -9.3e18)`,
	`size(value.s)`, `value.s.size()`, `value.s.upperAscii()`, `value.s.lowerAscii()`, `value.s.upperAscii().lowerAscii() + value.t`,
}

// notNative are expressions outside the subset: they must keep working
// through CEL alone.
var notNative = []string{
	`size(value)`, `value.l[0]`, `value.a in [1, 2]`, `1u`, `b"x"`, `string(value.a)`, `value.l.map(x, x * 2)`,
	`value.s.startsWith("a")`, `topic == "t"`, `value.m.x`, `timestamp("2024-01-01T00:00:00Z")`,
}

// nativeValues are records for the differential test; "a", "b" and "s",
// "t" are read as numbers and strings but are anything in some records.
var nativeValues = []string{
	`{"kind":"sale","amount":12.5,"country":"fr"}`,
	`{"kind":"test","amount":3,"country":"de"}`,
	`{"kind":"sale","amount":"12.5","country":null}`,
	`{"kind":"sale","amount":-0.0,"country":"straße"}`,
	`{"kind":"sale","amount":0,"country":"é"}`,
	`{"kind":1,"country":["x"]}`,
	`{"a":3,"b":4,"s":"x","t":"y","f":true}`,
	`{"a":-3,"b":0,"s":"","t":"","f":false}`,
	`{"a":9223372036854775807,"b":1,"s":"é","t":"ÉtÉ"}`,
	`{"a":-9223372036854775808,"b":-1,"s":"\u00e9\n\"","t":"\ud83d\ude00"}`,
	`{"a":-1,"b":-9223372036854775808,"s":"ǅ","t":"ǆ"}`,
	`{"a":9007199254740993,"b":9007199254740992.0,"s":"ABCdef","t":"abc"}`,
	`{"a":1.5,"b":2,"s":3,"t":null,"f":"true"}`,
	`{"a":1e400,"b":123456789012345678901234567890,"s":"Sale Of A Rather Long Name, More Than 24"}`,
	`{"a":9.3e18,"b":-9.3e18,"s":true,"t":{"x":1}}`,
	`{"a":-0,"b":-0.0,"s":"x","t":"x","f":null}`,
	`{"a":null,"b":null,"s":null,"t":null,"f":null}`,
	`{"a":[1],"b":{},"l":[1,2],"m":{"x":1}}`,
	`{"a":1e-320,"b":5e-324}`,
	`{}`,
}

// TestNativeMatchesCEL: every expression of the subset, hand-written and
// random, over hand-written and random records, on the map path and the
// JSON fast path, gives CEL's value or leaves the record to CEL.
func TestNativeMatchesCEL(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	exprs := append([]string(nil), nativeExprs...)
	for range 2000 {
		exprs = append(exprs, randomExpr(rng, 3))
	}
	values := append([]string(nil), nativeValues...)
	for range 100 {
		values = append(values, randomRecord(rng))
	}
	e, err := celEnv()
	if err != nil {
		t.Fatal(err)
	}
	var compiled, sure, asked int
	for i, expr := range exprs {
		var probs []string
		ce, _ := program(e, expr, "x", nil, func(_, msg string) { probs = append(probs, msg) })
		if len(probs) > 0 {
			if i < len(nativeExprs) {
				t.Fatalf("%s: %v", expr, probs)
			}
			continue // a random expression the type checker refuses
		}
		if ce.native == nil {
			if i < len(nativeExprs) {
				t.Errorf("%s: no native form", expr)
			}
			continue
		}
		compiled++
		for _, v := range values {
			for _, act := range nativeActivations(t, v) {
				asked++
				got, ok := ce.native(act)
				want, _, err := ce.program.Eval(act)
				if ok {
					sure++
					if err != nil {
						t.Errorf("%s on %s (%s): native %v, CEL error %v", expr, v, act.path(), got.celVal(), err)
					} else if !sameCELValue(got.celVal(), want) {
						t.Errorf("%s on %s (%s): native %v (%T), CEL %v (%T)", expr, v, act.path(), got.celVal(), got.celVal(), want, want)
					}
				}
				act.release()
			}
		}
	}
	for _, expr := range notNative {
		ce, _ := program(e, expr, "x", nil, func(_, msg string) { t.Fatalf("%s: %s", expr, msg) })
		if ce.native != nil {
			t.Errorf("%s: has a native form", expr)
		}
	}
	// The random expressions must mostly type-check, and the native
	// evaluator must decide most cases, or the test proves little.
	t.Logf("%d expressions with a native form, %d of %d evaluations sure", compiled, sure, asked)
	if compiled < len(nativeExprs)+400 || sure < asked/4 {
		t.Errorf("only %d expressions native, %d of %d evaluations sure", compiled, sure, asked)
	}
}

// nativeActivations are the record with value v as the map path and as
// the fast path (when it can take v) see it.
func nativeActivations(t *testing.T, v string) []*activation {
	t.Helper()
	r := &connector.Record{Topic: "t", Value: []byte(v)}
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	var fields map[string]any
	if err := d.Decode(&fields); err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	r.Fields = fields
	acts := []*activation{newActivation(r)}
	rr := new(rawRecord)
	var ok bool
	if rr.members, ok = codec.ScanJSONObject(r.Value, nil); ok {
		rr.data = r.Value
		act := newActivation(&connector.Record{Topic: "t", Value: []byte(v)})
		act.raw = rr
		acts = append(acts, act)
	}
	return acts
}

func (a *activation) path() string {
	if a.raw != nil {
		return "fast path"
	}
	return "map path"
}

// sameCELValue: the same type and value; doubles bit for bit (0.0 is not
// -0.0), NaN equal to NaN.
func sameCELValue(a, b ref.Val) bool {
	if a.Type() != b.Type() {
		return false
	}
	if x, ok := a.(types.Double); ok {
		y := b.(types.Double)
		return math.Float64bits(float64(x)) == math.Float64bits(float64(y)) || math.IsNaN(float64(x)) && math.IsNaN(float64(y))
	}
	return a.Equal(b) == types.True
}

var (
	randomLiterals = []string{`0`, `1`, `-1`, `7`, `100`, `9223372036854775807`, `-9223372036854775807`, `9007199254740993`,
		`0.0`, `-0.0`, `0.5`, `100.0`, `1e308`, `9.3e18`, `-9.3e18`, `9007199254740993.0`,
		`""`, `"test"`, `"x"`, `"é"`, `"ABC"`, `"ß"`, `true`, `false`, `null`}
	randomFields = []string{"a", "b", "s", "t", "f", "missing"}
	randomUnary  = []string{`!%s`, `-%s`, `int(%s)`, `double(%s)`, `size(%s)`, `%s.upperAscii()`, `%s.lowerAscii()`, `%s.size()`}
	randomBinary = []string{`==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, `+`, `-`, `*`, `/`, `%`}
)

// randomExpr is an expression of the subset, parenthesized, of the given
// depth at most.
func randomExpr(rng *rand.Rand, depth int) string {
	if depth == 0 || rng.IntN(4) == 0 {
		switch rng.IntN(3) {
		case 0:
			return randomLiterals[rng.IntN(len(randomLiterals))]
		case 1:
			return "has(value." + randomFields[rng.IntN(len(randomFields))] + ")"
		}
		return "value." + randomFields[rng.IntN(len(randomFields))]
	}
	switch rng.IntN(5) {
	case 0:
		return fmt.Sprintf(randomUnary[rng.IntN(len(randomUnary))], "("+randomExpr(rng, depth-1)+")")
	case 1:
		return fmt.Sprintf("(%s) ? (%s) : (%s)", randomExpr(rng, depth-1), randomExpr(rng, depth-1), randomExpr(rng, depth-1))
	}
	return fmt.Sprintf("(%s) %s (%s)", randomExpr(rng, depth-1), randomBinary[rng.IntN(len(randomBinary))], randomExpr(rng, depth-1))
}

var randomJSON = []string{`0`, `0.0`, `-9223372036854775808.0`, `1`, `-1`, `3`, `255`, `256`, `-300`, `9223372036854775807`, `-9223372036854775808`,
	`9007199254740993`, `99999999999999999999`, `0.5`, `-0.0`, `12.25`, `1e308`, `1.5e308`, `9.3e18`, `1e400`, `5e-324`, `2E3`,
	`""`, `"test"`, `"x"`, `"é"`, `"ÉCOLE été"`, `"a\"b"`, `"\u00e9"`, `"Straße"`, `"abcdefghijklmnopqrstuvwxyzABCDEF"`,
	`true`, `false`, `null`, `[1,2]`, `{"x":1}`}

// randomRecord is a JSON object with some of randomFields, each any value.
func randomRecord(rng *rand.Rand) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for _, f := range randomFields[:5] {
		if rng.IntN(5) == 0 {
			continue
		}
		if sb.Len() > 1 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%q:%s", f, randomJSON[rng.IntN(len(randomJSON))])
	}
	sb.WriteByte('}')
	return sb.String()
}

// TestNativeChainsMatchCEL: whole chains, on both paths, give the same
// records, errors, keys and headers with and without native forms: set
// fields read again (the fast path's stored values), renamed, masked.
func TestNativeChainsMatchCEL(t *testing.T) {
	chains := append([][]Step{
		{{Set: map[string]string{"n": `value.amount * 2.0`, "i": `int(value.amount)`, "s": `value.kind + "!"`, "b": `value.amount > 1`, "z": `null`}},
			{Set: map[string]string{"n2": `value.n + 1.0`, "i2": `value.i * 1000`, "s2": `value.s.upperAscii()`, "b2": `!value.b`, "z2": `value.z == null`}},
			{Rename: map[string]string{"amount": "amt"}}, {Mask: map[string]string{"kind": "sha256"}},
			{Filter: `has(value.amt) && value.kind != "x" && size(value.kind) == 64`}, {Key: `value.s2`}, {Headers: map[string]string{"h": `value.s2 + "/" + value.country`}}},
		{{Filter: `value.amount / 0 > 1 || value.kind == "test"`}, {Set: map[string]string{"x": `1`}}},
		{{Key: `value.amount * 100`}, {Headers: map[string]string{"a": `value.amount > 1 ? "big" : "small"`}}, {Set: map[string]string{"k": `int(value.amount * 1e18)`}}},
	}, diffChains...)
	values := append(append([]string(nil), diffValues...), nativeValues...)
	for i, steps := range chains {
		c, err := Compile(steps)
		if err != nil {
			t.Fatal(err)
		}
		cel := celOnly(c)
		for _, v := range values {
			if got, want := runMapPath(t, c, []byte(v)), runMapPath(t, cel, []byte(v)); !reflect.DeepEqual(got, want) {
				t.Errorf("chain %d on %s, map path:\nnative %+v\nCEL    %+v", i, v, got, want)
			}
			if !c.RawJSON() {
				continue
			}
			got, _ := runJSONPath(t, c, []byte(v))
			want, _ := runJSONPath(t, cel, []byte(v))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("chain %d on %s, fast path:\nnative %+v\nCEL    %+v", i, v, got, want)
			}
		}
	}
}

// TestBenchmarkExpressionsRunNatively: the benchmark expressions
// have native forms, and the native forms decide its records, so the
// speedup cannot silently go.
func TestBenchmarkExpressionsRunNatively(t *testing.T) {
	c, err := Compile([]Step{
		{Filter: `value.kind != "test" && value.amount > 0`},
		{Set: map[string]string{"total_cents": `int(value.amount * 100.0)`, "country": `value.country.upperAscii()`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	exprs := []*compiledExpr{&c.steps[0].expr, &c.steps[1].exprs[0].expr, &c.steps[1].exprs[1].expr}
	for _, v := range []string{
		`{"id":7,"user_id":7,"kind":"click","amount":7.25,"currency":"EUR","country":"de","page":"/checkout/confirm?step=3","mobile":false,"latency_ms":7}`,
		`{"kind":"sale","amount":12.5,"country":"fr","field_03":"value number 3"}`,
	} {
		for _, act := range nativeActivations(t, v) {
			for i, e := range exprs {
				if e.native == nil {
					t.Fatalf("expression %d has no native form", i)
				}
				if _, ok := e.native(act); !ok {
					t.Errorf("expression %d on %s (%s): not decided natively", i, v, act.path())
				}
			}
			act.release()
		}
	}
}
