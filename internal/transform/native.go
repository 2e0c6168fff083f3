package transform

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/sluice-dev/sluice/internal/codec"
)

// A native evaluator for a small subset of CEL. On the JSON fast path CEL
// cost about half a microsecond a record for a filter and two set fields:
// the activation, the interpreter's dispatch and a boxed ref.Val for every
// intermediate result. An expression made only of literals, value.NAME,
// has(value.NAME), comparisons, && || ! ?:, int and double arithmetic,
// int(), double(), string concatenation, size() of a string and
// upperAscii/lowerAscii is also compiled into Go closures over unboxed
// values. A closure either gives the value CEL would give, or says it is
// not sure: a value of another type than the ones it handles, a missing
// field, an overflow, a division by zero, NaN where CEL orders values, and
// every case CEL turns into an error. The caller then evaluates the record
// with the CEL program, so every error, its message and what on_error does
// with it stay CEL's. The subset is kept small on purpose: what it covers
// is certain, and TestNativeMatchesCEL and FuzzTransform hold it to CEL.

// nativeKind is the CEL type of a nativeVal.
type nativeKind uint8

const (
	nativeNull nativeKind = iota + 1
	nativeBool
	nativeInt
	nativeDouble
	nativeString
)

// nativeVal is a CEL null, bool, int, double or string, unboxed: bits
// holds a bool (0 or 1), an int64 or a float64's bits.
type nativeVal struct {
	kind nativeKind
	bits uint64
	str  string
}

func nativeBoolVal(b bool) nativeVal {
	if b {
		return nativeVal{kind: nativeBool, bits: 1}
	}
	return nativeVal{kind: nativeBool}
}

func nativeIntVal(i int64) nativeVal { return nativeVal{kind: nativeInt, bits: uint64(i)} }

func nativeDoubleVal(f float64) nativeVal {
	return nativeVal{kind: nativeDouble, bits: math.Float64bits(f)}
}

func (v nativeVal) isNumber() bool  { return v.kind == nativeInt || v.kind == nativeDouble }
func (v nativeVal) boolean() bool   { return v.bits != 0 }
func (v nativeVal) int() int64      { return int64(v.bits) }
func (v nativeVal) double() float64 { return math.Float64frombits(v.bits) }

// celVal is v as CEL gives it.
func (v nativeVal) celVal() ref.Val {
	switch v.kind {
	case nativeBool:
		return types.Bool(v.boolean())
	case nativeInt:
		return types.Int(v.int())
	case nativeDouble:
		return types.Double(v.double())
	case nativeString:
		return types.String(v.str)
	}
	return types.NullValue
}

// goValue is v as native (apply.go) turns the CEL value into a field.
func (v nativeVal) goValue() any {
	switch v.kind {
	case nativeBool:
		return v.boolean()
	case nativeInt:
		return v.int()
	case nativeDouble:
		return v.double()
	case nativeString:
		return v.str
	}
	return nil
}

// nativeExpr evaluates an expression on a record; sure false: evaluate
// it with CEL instead.
type nativeExpr func(a *activation) (v nativeVal, sure bool)

// compileNative is the native form of a checked expression, nil when it
// has none.
func compileNative(checked *cel.Ast) nativeExpr {
	if checked == nil {
		return nil
	}
	f, ok := nativeNode(checked.NativeRep().Expr())
	if !ok {
		return nil
	}
	return f
}

// nativeNode compiles one node; ok false: the node or one below it is
// outside the subset.
func nativeNode(e ast.Expr) (nativeExpr, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		var v nativeVal
		switch l := e.AsLiteral().(type) {
		case types.Null:
			v = nativeVal{kind: nativeNull}
		case types.Bool:
			v = nativeBoolVal(bool(l))
		case types.Int:
			v = nativeIntVal(int64(l))
		case types.Double:
			v = nativeDoubleVal(float64(l))
		case types.String:
			v = nativeVal{kind: nativeString, str: string(l)}
		default: // uint, bytes
			return nil, false
		}
		return func(*activation) (nativeVal, bool) { return v, true }, true
	case ast.SelectKind:
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() != ast.IdentKind || op.AsIdent() != "value" {
			return nil, false
		}
		name := sel.FieldName()
		if sel.IsTestOnly() {
			return func(a *activation) (nativeVal, bool) {
				_, found, sure := a.nativeField(name)
				return nativeBoolVal(found), sure
			}, true
		}
		return func(a *activation) (nativeVal, bool) {
			v, found, sure := a.nativeField(name)
			return v, sure && found
		}, true
	case ast.CallKind:
		return nativeCall(e.AsCall())
	}
	return nil, false
}

func nativeCall(call ast.CallExpr) (nativeExpr, bool) {
	var args []nativeExpr
	if call.IsMemberFunction() {
		t, ok := nativeNode(call.Target())
		if !ok {
			return nil, false
		}
		args = append(args, t)
	}
	for _, arg := range call.Args() {
		f, ok := nativeNode(arg)
		if !ok {
			return nil, false
		}
		args = append(args, f)
	}
	name := call.FunctionName()
	switch name {
	case "size": // size(s) and s.size()
	case "upperAscii", "lowerAscii":
		if !call.IsMemberFunction() {
			return nil, false
		}
	default:
		if call.IsMemberFunction() {
			return nil, false
		}
	}
	switch len(args) {
	case 1:
		x := args[0]
		switch name {
		case operators.LogicalNot:
			return func(a *activation) (nativeVal, bool) {
				v, ok := x(a)
				if !ok || v.kind != nativeBool {
					return nativeVal{}, false
				}
				return nativeBoolVal(!v.boolean()), true
			}, true
		case operators.Negate:
			return func(a *activation) (nativeVal, bool) {
				v, ok := x(a)
				switch {
				case !ok:
				case v.kind == nativeInt && v.int() != math.MinInt64:
					return nativeIntVal(-v.int()), true
				case v.kind == nativeDouble:
					return nativeDoubleVal(-v.double()), true
				}
				return nativeVal{}, false
			}, true
		case "int":
			return nativeToInt(x), true
		case "double":
			return func(a *activation) (nativeVal, bool) {
				v, ok := x(a)
				switch {
				case !ok:
				case v.kind == nativeDouble:
					return v, true
				case v.kind == nativeInt:
					return nativeDoubleVal(float64(v.int())), true
				}
				return nativeVal{}, false
			}, true
		case "size":
			return func(a *activation) (nativeVal, bool) {
				v, ok := x(a)
				if !ok || v.kind != nativeString {
					return nativeVal{}, false
				}
				return nativeIntVal(int64(len([]rune(v.str)))), true // as types.String.Size counts
			}, true
		case "upperAscii":
			return nativeCase(x, 'a', 'z', unicode.ToUpper), true
		case "lowerAscii":
			return nativeCase(x, 'A', 'Z', unicode.ToLower), true
		}
	case 2:
		l, r := args[0], args[1]
		switch name {
		case operators.LogicalAnd:
			return nativeLogic(l, r, false), true
		case operators.LogicalOr:
			return nativeLogic(l, r, true), true
		case operators.Equals:
			return nativeEquality(l, r, false), true
		case operators.NotEquals:
			return nativeEquality(l, r, true), true
		case operators.Less:
			return nativeOrder(l, r, func(c int) bool { return c < 0 }), true
		case operators.LessEquals:
			return nativeOrder(l, r, func(c int) bool { return c <= 0 }), true
		case operators.Greater:
			return nativeOrder(l, r, func(c int) bool { return c > 0 }), true
		case operators.GreaterEquals:
			return nativeOrder(l, r, func(c int) bool { return c >= 0 }), true
		case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo:
			return nativeArithmetic(name, l, r), true
		}
	case 3:
		if name == operators.Conditional {
			c, t, f := args[0], args[1], args[2]
			return func(a *activation) (nativeVal, bool) {
				v, ok := c(a)
				if !ok || v.kind != nativeBool {
					return nativeVal{}, false
				}
				if v.boolean() {
					return t(a)
				}
				return f(a)
			}, true
		}
	}
	return nil, false
}

// nativeLogic is && (or false) and || (or true). CEL's logical operators
// are commutative over errors: one false operand makes && false whatever
// the other is (an error, a string), so an operand the closure is not
// sure of leaves the result to CEL only when the other operand does not
// decide it.
func nativeLogic(l, r nativeExpr, or bool) nativeExpr {
	return func(a *activation) (nativeVal, bool) {
		lv, lok := l(a)
		lbool := lok && lv.kind == nativeBool
		if lbool && lv.boolean() == or {
			return lv, true
		}
		rv, rok := r(a)
		rbool := rok && rv.kind == nativeBool
		if rbool && rv.boolean() == or {
			return rv, true
		}
		if lbool && rbool {
			return nativeBoolVal(!or), true
		}
		return nativeVal{}, false
	}
}

// nativeStrict is a binary operator that needs both operands' values:
// op is not asked when the closure is not sure of either.
func nativeStrict(l, r nativeExpr, op func(lv, rv nativeVal) (nativeVal, bool)) nativeExpr {
	return func(a *activation) (nativeVal, bool) {
		lv, ok := l(a)
		if !ok {
			return nativeVal{}, false
		}
		rv, ok := r(a)
		if !ok {
			return nativeVal{}, false
		}
		return op(lv, rv)
	}
}

// nativeEquality is == (or != when negate), as types.Equal: null equals
// only null, numbers compare across int and double (NaN equals nothing),
// and values of other different types are not equal.
func nativeEquality(l, r nativeExpr, negate bool) nativeExpr {
	return nativeStrict(l, r, func(lv, rv nativeVal) (nativeVal, bool) {
		var eq bool
		switch {
		case lv.kind == nativeNull || rv.kind == nativeNull:
			eq = lv.kind == rv.kind
		case lv.isNumber() && rv.isNumber():
			c, ordered, _ := nativeCompareNumbers(lv, rv)
			eq = ordered && c == 0 // NaN equals nothing
		case lv.kind != rv.kind:
			eq = false
		case lv.kind == nativeString:
			eq = lv.str == rv.str
		default: // two bools
			eq = lv.bits == rv.bits
		}
		return nativeBoolVal(eq != negate), true
	})
}

// nativeCompareNumbers compares two numbers as CEL's Compare does across
// int and double (compareDoubleInt); numeric false: one is not a number;
// ordered false: one is NaN, which CEL refuses to order.
func nativeCompareNumbers(lv, rv nativeVal) (c int, ordered, numeric bool) {
	switch {
	case lv.kind == nativeInt && rv.kind == nativeInt:
		return cmpOrdered(lv.int(), rv.int()), true, true
	case lv.kind == nativeDouble && rv.kind == nativeDouble:
		x, y := lv.double(), rv.double()
		if math.IsNaN(x) || math.IsNaN(y) {
			return 0, false, true
		}
		return cmpOrdered(x, y), true, true
	case lv.kind == nativeDouble && rv.kind == nativeInt:
		d := lv.double()
		if math.IsNaN(d) {
			return 0, false, true
		}
		return compareDoubleInt(d, rv.int()), true, true
	case lv.kind == nativeInt && rv.kind == nativeDouble:
		d := rv.double()
		if math.IsNaN(d) {
			return 0, false, true
		}
		return -compareDoubleInt(d, lv.int()), true, true
	}
	return 0, false, false
}

// compareDoubleInt is cel-go's (common/types/compare.go).
func compareDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmpOrdered(d, float64(i))
}

func cmpOrdered[T int64 | float64 | string](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// nativeOrder is < <= > >= on two strings, two bools or two numbers.
func nativeOrder(l, r nativeExpr, holds func(c int) bool) nativeExpr {
	return nativeStrict(l, r, func(lv, rv nativeVal) (nativeVal, bool) {
		var c int
		switch {
		case lv.kind == nativeString && rv.kind == nativeString:
			c = cmpOrdered(lv.str, rv.str)
		case lv.kind == nativeBool && rv.kind == nativeBool:
			c = cmpOrdered(int64(lv.bits), int64(rv.bits)) // false < true
		default:
			var ordered bool
			if c, ordered, _ = nativeCompareNumbers(lv, rv); !ordered {
				return nativeVal{}, false
			}
		}
		return nativeBoolVal(holds(c)), true
	})
}

// nativeArithmetic is + - * / % on two ints (not sure on overflow and
// division by zero, which CEL makes errors), + - * / on two doubles
// (IEEE 754, as CEL), and + on two strings.
func nativeArithmetic(op string, l, r nativeExpr) nativeExpr {
	return nativeStrict(l, r, func(lv, rv nativeVal) (nativeVal, bool) {
		if lv.kind != rv.kind {
			return nativeVal{}, false
		}
		switch lv.kind {
		case nativeInt:
			return intArithmetic(op, lv.int(), rv.int())
		case nativeDouble:
			x, y := lv.double(), rv.double()
			switch op {
			case operators.Add:
				return nativeDoubleVal(x + y), true
			case operators.Subtract:
				return nativeDoubleVal(x - y), true
			case operators.Multiply:
				return nativeDoubleVal(x * y), true
			case operators.Divide:
				return nativeDoubleVal(x / y), true
			}
		case nativeString:
			if op == operators.Add {
				return nativeVal{kind: nativeString, str: lv.str + rv.str}, true
			}
		}
		return nativeVal{}, false
	})
}

// intArithmetic is cel-go's checked int64 arithmetic (common/types/
// overflow.go), with not sure for each of its errors.
func intArithmetic(op string, x, y int64) (nativeVal, bool) {
	switch op {
	case operators.Add:
		if (y > 0 && x > math.MaxInt64-y) || (y < 0 && x < math.MinInt64-y) {
			return nativeVal{}, false
		}
		return nativeIntVal(x + y), true
	case operators.Subtract:
		if (y < 0 && x > math.MaxInt64+y) || (y > 0 && x < math.MinInt64+y) {
			return nativeVal{}, false
		}
		return nativeIntVal(x - y), true
	case operators.Multiply:
		p := x * y
		if x != 0 && (p/x != y || (x == -1 && y == math.MinInt64)) {
			return nativeVal{}, false
		}
		return nativeIntVal(p), true
	case operators.Divide, operators.Modulo:
		if y == 0 || (x == math.MinInt64 && y == -1) {
			return nativeVal{}, false
		}
		if op == operators.Divide {
			return nativeIntVal(x / y), true
		}
		return nativeIntVal(x % y), true
	}
	return nativeVal{}, false
}

// nativeToInt is int() of an int or a double; a double out of int64's
// range (or NaN, infinite) is CEL's range error.
func nativeToInt(x nativeExpr) nativeExpr {
	return func(a *activation) (nativeVal, bool) {
		v, ok := x(a)
		switch {
		case !ok:
		case v.kind == nativeInt:
			return v, true
		case v.kind == nativeDouble:
			// The bounds of cel-go's doubleToInt64Checked; NaN fails both.
			if d := v.double(); d > math.MinInt64 && d < math.MaxInt64 {
				return nativeIntVal(int64(d)), true
			}
		}
		return nativeVal{}, false
	}
}

// nativeCase is upperAscii or lowerAscii (see asciiCase).
func nativeCase(x nativeExpr, lo, hi byte, conv func(rune) rune) nativeExpr {
	return func(a *activation) (nativeVal, bool) {
		v, ok := x(a)
		if !ok || v.kind != nativeString {
			return nativeVal{}, false
		}
		change, ascii := asciiCaseChange(v.str, lo, hi)
		switch {
		case !ascii:
			v.str = runeCase(v.str, conv)
		case change:
			buf := make([]byte, len(v.str))
			v.str = asciiCaseInto(buf, v.str, lo, hi)
		}
		return v, true
	}
}

// nativeField is the value expressions read as value.NAME: found false
// when the record has no such field, sure false when the value is one
// the native evaluator does not handle (a list, a record, a number beyond
// int64 or float64) or is not a record.
func (a *activation) nativeField(name string) (v nativeVal, found, sure bool) {
	if rr := a.raw; rr != nil {
		return rr.nativeField(name)
	}
	if a.rec.Fields == nil {
		return nativeVal{}, false, false // value is the bytes
	}
	f, ok := a.rec.Fields[name]
	if !ok {
		return nativeVal{}, false, true
	}
	v, sure = nativeFromGo(f)
	return v, true, sure
}

// nativeField is activation.nativeField on the JSON fast path: the value
// FindStringKey gives CEL, unboxed.
func (rr *rawRecord) nativeField(name string) (v nativeVal, found, sure bool) {
	if sv, ok := rr.setValue(name); ok {
		v, sure = nativeFromGo(sv)
		return v, true, sure
	}
	m := rr.member(name)
	if m == nil {
		return nativeVal{}, false, true
	}
	if text, isString, ok := codec.RawMemberText(rr.data, m); ok {
		if isString {
			return nativeVal{kind: nativeString, str: text}, true, true
		}
		v, sure = nativeNumber(text)
		return v, true, sure
	}
	switch rr.data[m.Start] {
	case 't':
		return nativeBoolVal(true), true, true
	case 'f':
		return nativeBoolVal(false), true, true
	case 'n':
		return nativeVal{kind: nativeNull}, true, true
	case '"': // a string with escapes
		v, sure = nativeFromGo(codec.RawMemberValue(rr.data, m))
		return v, true, sure
	}
	return nativeVal{}, true, false // a record or a list
}

// nativeFromGo is what the fields adapter makes of a Go value from
// Fields, or a scalar CEL value a set step stored on the fast path.
func nativeFromGo(v any) (nativeVal, bool) {
	switch v := v.(type) {
	case nil, types.Null:
		return nativeVal{kind: nativeNull}, true
	case bool:
		return nativeBoolVal(v), true
	case types.Bool:
		return nativeBoolVal(bool(v)), true
	case string:
		return nativeVal{kind: nativeString, str: v}, true
	case types.String:
		return nativeVal{kind: nativeString, str: string(v)}, true
	case int64:
		return nativeIntVal(v), true
	case types.Int:
		return nativeIntVal(int64(v)), true
	case float64:
		return nativeDoubleVal(v), true
	case types.Double:
		return nativeDoubleVal(float64(v)), true
	case json.Number:
		return nativeNumber(string(v))
	}
	return nativeVal{}, false
}

// nativeNumber is celNumber, unboxed.
func nativeNumber(text string) (nativeVal, bool) {
	if hasFraction(text) {
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return nativeDoubleVal(f), true
		}
		return nativeVal{}, false
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return nativeIntVal(i), true
	}
	return nativeVal{}, false
}

// box is v as a set field's value on the fast path (rawSet.val): a
// scalar CEL value, strings, doubles and large ints boxed from the slab.
func (rr *rawRecord) box(v nativeVal) any {
	switch v.kind {
	case nativeBool:
		return types.Bool(v.boolean())
	case nativeInt:
		return rr.slab.boxInt(types.Int(v.int()))
	case nativeDouble:
		return rr.slab.boxDouble(types.Double(v.double()))
	case nativeString:
		return rr.slab.boxString(v.str)
	}
	return types.NullValue
}
