package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A setting is declared once, on its field, by struct tags that this file
// reads:
//
//	yaml:"max_records"   the key
//	default:"10000"      applied when the value is zero (sizes may say 8MiB,
//	                     durations 50ms); a default that depends on other
//	                     settings stays code in applyDefaults and is
//	                     described in the doc tag instead
//	zero:"refused"       with default: an explicit 0 is an error, the default
//	                     applies only when the key is absent (see
//	                     consumersUnset)
//	doc:"..."            the description in docs/config.md and the schema
//	enum:"a|b"           the allowed values (for a list: of each element)
//	min:"1" max:"256"    the allowed range (integers, durations)
//	example:"..."        a value to show
//	secret:"true"        redacted wherever config is printed
//	advanced:"true"      rarely needed; listed after the others
//
// From them come the defaults (applySpecDefaults), the enum and range checks
// (checkSpecs), the redaction (redact.go), the Markdown reference
// (docs.go) and the JSON Schema (schema.go). A field without tags still
// decodes and validates by its hand-written checks.

// Field is one setting as its tags declare it.
type Field struct {
	Key      string
	Type     reflect.Type
	Default  string
	Doc      string
	Enum     []string
	Min, Max string
	Example  string
	Secret   bool
	Advanced bool
	// ZeroRefused: an explicit 0 is refused, see the zero tag.
	ZeroRefused bool
	index       []int // into the struct, through inline embedding
}

// Fields lists the settings of a config struct type in declaration order,
// inline-embedded structs flattened in place.
func Fields(t reflect.Type) []Field {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for _, in := range Fields(f.Type) {
				in.index = append([]int{i}, in.index...)
				out = append(out, in)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs := Field{
			Key: name, Type: f.Type, Default: f.Tag.Get("default"), Doc: f.Tag.Get("doc"),
			Min: f.Tag.Get("min"), Max: f.Tag.Get("max"), Example: f.Tag.Get("example"),
			Secret: f.Tag.Get("secret") == "true", Advanced: f.Tag.Get("advanced") == "true",
			ZeroRefused: f.Tag.Get("zero") == "refused", index: []int{i},
		}
		if e := f.Tag.Get("enum"); e != "" {
			fs.Enum = strings.Split(e, "|")
		}
		out = append(out, fs)
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// parseTagValue converts a default, min or max tag to a value of type t.
func parseTagValue(s string, t reflect.Type) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	switch {
	case t == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return v, err
		}
		v.SetInt(int64(d))
	case t.Kind() == reflect.String:
		v.SetString(s)
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return v, err
		}
		v.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		n, err := parseSize(s)
		if err != nil {
			return v, err
		}
		v.SetInt(n)
	case t.Kind() == reflect.Pointer:
		e, err := parseTagValue(s, t.Elem())
		if err != nil {
			return v, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(e)
		v.Set(p)
	default:
		return v, fmt.Errorf("no tag values for %s", t)
	}
	return v, nil
}

// parseSize reads an integer with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// applySpecDefaults sets every zero field of v (a pointer to a config
// struct) that has a default tag, in every block present, recursively.
func applySpecDefaults(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			applySpecDefaults(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			applySpecDefaults(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			applySpecDefaults(e)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if !isConfigType(v.Type()) {
			return
		}
		for _, f := range Fields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if f.Default != "" && isUnset(fv, f) {
				d, err := parseTagValue(f.Default, f.Type)
				if err != nil {
					panic(fmt.Sprintf("config: bad default tag on %s: %v", f.Key, err)) // a programming error, caught by TestSpecTagsParse
				}
				fv.Set(d)
			}
			applySpecDefaults(fv)
		}
	}
}

func isUnset(v reflect.Value, f Field) bool {
	if f.ZeroRefused {
		return v.Int() == consumersUnset
	}
	return v.IsZero()
}

// isConfigType says whether t is declared in this package: the walk
// follows only config structs, not transform steps.
func isConfigType(t reflect.Type) bool {
	return t.PkgPath() == reflect.TypeOf(File{}).PkgPath()
}

// checkSpecs adds a problem for every value of v (a config struct) outside
// its field's enum or range, with its field path under v.
func checkSpecs(v *validator, rv reflect.Value) {
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || !isConfigType(rv.Type()) {
		return
	}
	for _, f := range Fields(rv.Type()) {
		fv := rv.FieldByIndex(f.index)
		switch {
		case len(f.Enum) > 0 && fv.Kind() == reflect.String:
			v.oneOf(f.Key, fv.String(), f.Enum...)
		case len(f.Enum) > 0 && fv.Kind() == reflect.Slice:
			for i := 0; i < fv.Len(); i++ {
				v.oneOf(fmt.Sprintf("%s[%d]", f.Key, i), fv.Index(i).String(), f.Enum...)
			}
		case f.Min != "" || f.Max != "":
			if msg := outOfRange(fv, f); msg != "" {
				v.add(f.Key, msg)
			}
		}
		switch fv.Kind() {
		case reflect.Pointer, reflect.Struct:
			checkSpecs(v.sub(f.Key), fv)
		case reflect.Map:
			keys := fv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				if k.Kind() == reflect.String {
					checkSpecs(v.sub(f.Key+"."+k.String()), fv.MapIndex(k))
				}
			}
		}
	}
}

// outOfRange says what is wrong with an integer or duration outside
// [min, max], in the words the hand-written checks used.
func outOfRange(fv reflect.Value, f Field) string {
	if fv.Kind() < reflect.Int || fv.Kind() > reflect.Int64 {
		return ""
	}
	n := fv.Int()
	var lo, hi int64
	var hasLo, hasHi bool
	if f.Min != "" {
		m, _ := parseTagValue(f.Min, f.Type)
		lo, hasLo = m.Int(), true
	}
	if f.Max != "" {
		m, _ := parseTagValue(f.Max, f.Type)
		hi, hasHi = m.Int(), true
	}
	if (!hasLo || n >= lo) && (!hasHi || n <= hi) {
		return ""
	}
	if f.Type == durationType {
		switch {
		case hasHi:
			return fmt.Sprintf("%s is outside %s-%s", time.Duration(n), f.Min, f.Max)
		case lo > 0:
			return "must be a positive duration such as 500ms or 30s"
		}
		return "must be >= " + f.Min
	}
	switch {
	case hasLo && hasHi:
		return fmt.Sprintf("must be between %s and %s", f.Min, f.Max)
	case hasLo && lo == 1:
		return "must be > 0"
	case hasLo:
		return "must be >= " + f.Min
	}
	return "must be <= " + f.Max
}
