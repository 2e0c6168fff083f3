package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/sluice-dev/sluice/internal/codec"
)

// Chain is a compiled transforms list. It is safe for concurrent use: every
// consumer of a pipeline applies the same Chain.
type Chain struct {
	steps   []step
	rawJSON bool // see RawJSON
}

type stepKind int

const (
	kindFilter stepKind = iota
	kindSet
	kindDrop
	kindRename
	kindMask
	kindKey
	kindHeaders
)

// step is one compiled Step. Named lists are sorted by name, so a step
// does the same thing on every run.
type step struct {
	path    string // transforms[2], for error messages
	kind    stepKind
	expr    compiledExpr // filter, key
	exprs   []namedProgram
	fields  []fieldPath    // drop
	renames [][2]fieldPath // rename: old, new
	masks   []maskedField
}

type namedProgram struct {
	name     string
	jsonName string   // set: `"name":` as the JSON encoder writes it
	path     []string // the field path for set; nil for headers
	expr     compiledExpr
}

// compiledExpr is an expression's CEL program and its native form (see
// native.go), nil when it has none.
type compiledExpr struct {
	program cel.Program
	native  nativeExpr
}

// evalNative is the expression's native value; ok false: evaluate it with
// the program.
func (e *compiledExpr) evalNative(act *activation) (v nativeVal, ok bool) {
	if e.native == nil {
		return nativeVal{}, false
	}
	return e.native(act)
}

// eval is the expression's value on the record.
func (e *compiledExpr) eval(act *activation) (ref.Val, error) {
	if v, ok := e.evalNative(act); ok {
		return v.celVal(), nil
	}
	out, _, err := e.program.Eval(act)
	return out, err
}

type fieldPath struct {
	name  string
	parts []string
}

type maskedField struct {
	fieldPath
	method string
}

var (
	envOnce sync.Once
	env     *cel.Env
	envErr  error
)

// celEnv is the environment every expression is compiled in. Values are
// dynamic: a record's fields are only known per record (schemas evolve),
// so a wrong field name is found when a record lacks it, while operator
// misuse on known types (1 + "a") is found at compile time.
func celEnv() (*cel.Env, error) {
	envOnce.Do(func() {
		reg, err := types.NewRegistry()
		if err != nil {
			envErr = err
			return
		}
		opts := []cel.EnvOption{
			cel.CustomTypeAdapter(fieldsAdapter{reg}),
			cel.Variable("value", cel.DynType),
			cel.Variable("key", cel.DynType),
			cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("topic", cel.StringType),
			cel.Variable("partition", cel.IntType),
			cel.Variable("offset", cel.IntType),
			cel.Variable("timestamp", cel.TimestampType),
			cel.Variable("schema", cel.StringType),
			ext.Strings(),
			ext.Encoders(),
			ext.Math(),
		}
		env, envErr = cel.NewEnv(append(opts, asciiCaseFunctions...)...)
	})
	return env, envErr
}

// fieldsAdapter gives expressions what codecs put in Fields: CEL's own
// conversions, plus Avro decimals (*big.Rat) as doubles. Records and lists
// are wrapped with this adapter so that nested decimals convert too.
type fieldsAdapter struct{ base types.Adapter }

func (a fieldsAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	case json.Number:
		if n, ok := celNumber(string(v)); ok {
			return n
		}
	case *rawRecord:
		// The interpreter looks fields up with FindStringKey first; a
		// field it lacks is then missing, as from a map.
		return types.NullValue
	case *big.Rat:
		if v == nil {
			return types.NullValue
		}
		f, _ := v.Float64()
		return types.Double(f)
	}
	return a.base.NativeToValue(v)
}

// celNumber is what the base adapter makes of json.Number(text), without
// the error that Int64 allocates first for every number with a fraction;
// ok false leaves the rarer cases (an integer beyond int64) to it.
func celNumber(text string) (ref.Val, bool) {
	if hasFraction(text) {
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return types.Double(f), true
		}
		return nil, false
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return types.Int(i), true
	}
	return nil, false
}

// hasFraction reports whether a JSON number has a fraction or an exponent
// (strings.ContainsAny, without building its byte set per call).
func hasFraction(text string) bool {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c == '.' || c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}

// Compile compiles every step. It fails with every problem found, each with
// its field path; an empty list gives a nil Chain.
func Compile(steps []Step) (*Chain, error) {
	c, probs := compile(steps)
	if len(probs) > 0 {
		return nil, problemsError(probs)
	}
	return c, nil
}

func problemsError(probs []Problem) error {
	msgs := make([]string, len(probs))
	for i, p := range probs {
		msgs[i] = p.String()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func compile(steps []Step) (*Chain, []Problem) {
	if len(steps) == 0 {
		return nil, nil
	}
	e, err := celEnv()
	if err != nil {
		return nil, []Problem{{Path: "transforms", Msg: fmt.Sprintf("creating the expression environment: %v", err)}}
	}
	var probs []Problem
	add := func(path, msg string) { probs = append(probs, Problem{Path: path, Msg: msg}) }
	c := &Chain{}
	// Every expression reads value only as value.NAME (see RawJSON).
	fieldsOnly := true
	compileExpr := func(expr, path string, want *cel.Type) compiledExpr {
		ce, checked := program(e, expr, path, want, add)
		if checked != nil && !readsValueFieldsOnly(checked) {
			fieldsOnly = false
		}
		return ce
	}
	for i := range steps {
		s := &steps[i]
		base := fmt.Sprintf("transforms[%d]", i)
		kinds := s.kinds()
		switch len(kinds) {
		case 0:
			add(base, "a step needs one of filter, set, drop, rename, mask, key, headers")
			continue
		case 1:
		default:
			add(base, fmt.Sprintf("a step does one thing, this one has %s: make them separate steps", strings.Join(kinds, ", ")))
			continue
		}
		st := step{path: base}
		switch kinds[0] {
		case "filter":
			st.kind = kindFilter
			st.expr = compileExpr(s.Filter, base+".filter", cel.BoolType)
		case "key":
			st.kind = kindKey
			st.expr = compileExpr(s.Key, base+".key", nil)
		case "set", "headers":
			st.kind = kindSet
			exprs := s.Set
			if kinds[0] == "headers" {
				st.kind, exprs = kindHeaders, s.Headers
			}
			for _, name := range sortedKeys(exprs) {
				path := base + "." + kinds[0] + "." + name
				np := namedProgram{name: name, expr: compileExpr(exprs[name], path, nil)}
				if st.kind == kindSet {
					parts, err := splitPath(name)
					if err != nil {
						add(path, err.Error())
					}
					np.path = parts
					var quoted bytes.Buffer
					codec.AppendJSONName(&quoted, name)
					np.jsonName = quoted.String()
				} else if name == "" {
					add(path, "empty header name")
				}
				st.exprs = append(st.exprs, np)
			}
		case "drop":
			st.kind = kindDrop
			for j, name := range s.Drop {
				parts, err := splitPath(name)
				if err != nil {
					add(fmt.Sprintf("%s.drop[%d]", base, j), err.Error())
				}
				st.fields = append(st.fields, fieldPath{name, parts})
			}
		case "rename":
			st.kind = kindRename
			for _, old := range sortedKeys(s.Rename) {
				path := base + ".rename." + old
				from, err := splitPath(old)
				if err != nil {
					add(path, err.Error())
				}
				to, err := splitPath(s.Rename[old])
				if err != nil {
					add(path, err.Error())
				}
				st.renames = append(st.renames, [2]fieldPath{{old, from}, {s.Rename[old], to}})
			}
		case "mask":
			st.kind = kindMask
			for _, name := range sortedKeys(s.Mask) {
				path := base + ".mask." + name
				parts, err := splitPath(name)
				if err != nil {
					add(path, err.Error())
				}
				if m := s.Mask[name]; m != MaskSHA256 && m != MaskRedact {
					add(path, fmt.Sprintf("%q is not one of %s, %s", m, MaskSHA256, MaskRedact))
				}
				st.masks = append(st.masks, maskedField{fieldPath{name, parts}, s.Mask[name]})
			}
		}
		c.steps = append(c.steps, st)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	c.rawJSON = fieldsOnly && ChangesFields(steps)
	for i := range c.steps {
		c.rawJSON = c.rawJSON && rawJSONStep(&c.steps[i])
	}
	return c, nil
}

// program compiles one expression, with its native form when it has one,
// and gives its checked tree too. want, when set, is the type the result
// must have (a filter's bool); a dynamic result is checked per record.
func program(e *cel.Env, expr, path string, want *cel.Type, add func(path, msg string)) (compiledExpr, *cel.Ast) {
	if strings.TrimSpace(expr) == "" {
		add(path, "empty expression")
		return compiledExpr{}, nil
	}
	ast, iss := e.Compile(expr)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			loc := ce.Location
			add(path, fmt.Sprintf("%s (at %d:%d in %q)", ce.Message, loc.Line(), loc.Column()+1, expr))
		}
		return compiledExpr{}, nil
	}
	if want != nil {
		out := ast.OutputType()
		if !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
			add(path, fmt.Sprintf("must be a %s expression, this one gives %s (in %q)", want, out, expr))
			return compiledExpr{}, nil
		}
	}
	prg, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		add(path, fmt.Sprintf("preparing %q: %v", expr, err))
		return compiledExpr{}, nil
	}
	return compiledExpr{program: prg, native: compileNative(ast)}, ast
}
