package transform

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/common/ast"
)

// CheckFields holds the expressions of steps and routes to the record's
// known top-level fields: fields is what the reader schema gives, and each
// step changes it for the steps after it (set adds a field, drop removes
// it, rename moves it). An expression that reads value.NAME for a NAME not
// known at its step is a problem, with its position; has(value.NAME) is a
// test and may name anything. Nested fields are not checked (a field may
// be a map). fields nil: nothing is known, nothing is checked.
func CheckFields(steps []Step, routes []Route, fields map[string]bool) []Problem {
	if fields == nil {
		return nil
	}
	known := make(map[string]bool, len(fields))
	for f := range fields {
		known[f] = true
	}
	var probs []Problem
	check := func(path, expr string) {
		for _, msg := range unknownFields(expr, known) {
			probs = append(probs, Problem{Path: path, Msg: msg})
		}
	}
	for i := range steps {
		s := &steps[i]
		base := fmt.Sprintf("transforms[%d]", i)
		if s.Filter != "" {
			check(base+".filter", s.Filter)
		}
		if s.Key != "" {
			check(base+".key", s.Key)
		}
		for _, name := range sortedKeys(s.Headers) {
			check(base+".headers."+name, s.Headers[name])
		}
		for _, name := range sortedKeys(s.Set) {
			check(base+".set."+name, s.Set[name])
		}
		// What the step leaves for the next ones.
		for name := range s.Set {
			known[topLevel(name)] = true
		}
		for _, name := range s.Drop {
			if !strings.Contains(name, ".") {
				delete(known, name)
			}
		}
		for old, name := range s.Rename {
			if !strings.Contains(old, ".") {
				delete(known, old)
			}
			known[topLevel(name)] = true
		}
	}
	for i, r := range routes {
		if r.When != "" {
			check(fmt.Sprintf("route[%d].when", i), r.When)
		}
	}
	return probs
}

func topLevel(path string) string {
	name, _, _ := strings.Cut(path, ".")
	return name
}

// unknownFields parses expr and describes each value.NAME it reads that is
// not in known, unless it also tests it with has(). An expression that does not parse is left to the compile
// check, which reports it.
func unknownFields(expr string, known map[string]bool) []string {
	e, err := celEnv()
	if err != nil {
		return nil
	}
	parsed, iss := e.Parse(expr)
	if iss != nil && iss.Err() != nil {
		return nil
	}
	tree := parsed.NativeRep()
	var reads []ast.SelectExpr
	tested := map[string]bool{} // has(value.NAME): the expression guards NAME
	for _, sel := range ast.MatchDescendants(ast.NavigateAST(tree), ast.KindMatcher(ast.SelectKind)) {
		s := sel.AsSelect()
		if s.Operand().Kind() != ast.IdentKind || s.Operand().AsIdent() != "value" {
			continue
		}
		if s.IsTestOnly() {
			tested[s.FieldName()] = true
		} else {
			reads = append(reads, s)
		}
	}
	var out []string
	for _, s := range reads {
		if known[s.FieldName()] || tested[s.FieldName()] {
			continue
		}
		loc := tree.SourceInfo().GetStartLocation(s.Operand().ID())
		out = append(out, fmt.Sprintf("value has no field %q here (known: %s; test with has(value.%s) if records may have it) (at %d:%d in %q)",
			s.FieldName(), knownList(known), s.FieldName(), loc.Line(), loc.Column()+1, expr))
	}
	return out
}

func knownList(known map[string]bool) string {
	names := make([]string, 0, len(known))
	for f := range known {
		names = append(names, f)
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8], "...")
	}
	return strings.Join(names, ", ")
}
