package transform

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Route is one entry of a pipeline's `route:` list: records whose When is
// true go to the named sink. The last entry has no When: it takes every
// record no other entry matched, so none is left without a sink.
type Route struct {
	When string `yaml:"when,omitempty"`
	Sink string `yaml:"sink"`
}

// Router picks each record's sink by the first matching route. It is safe
// for concurrent use.
type Router struct {
	routes []compiledRoute
}

type compiledRoute struct {
	path string
	when compiledExpr // program nil: the default
	sink string
}

// CheckRoutes compiles routes against the named sinks and returns every
// problem, with paths relative to the pipeline (route[1].when).
func CheckRoutes(routes []Route, sinks map[string]bool) []Problem {
	_, probs := compileRoutes(routes, sinks)
	return probs
}

// CompileRouter compiles routes; every sink they name must be in sinks.
func CompileRouter(routes []Route, sinks map[string]bool) (*Router, error) {
	r, probs := compileRoutes(routes, sinks)
	if len(probs) > 0 {
		return nil, problemsError(probs)
	}
	return r, nil
}

func compileRoutes(routes []Route, sinks map[string]bool) (*Router, []Problem) {
	var probs []Problem
	add := func(path, msg string) { probs = append(probs, Problem{Path: path, Msg: msg}) }
	if len(routes) == 0 {
		return nil, []Problem{{Path: "route", Msg: "is required with sinks: a list of {when: EXPR, sink: NAME}, the last without when"}}
	}
	e, err := celEnv()
	if err != nil {
		return nil, []Problem{{Path: "route", Msg: fmt.Sprintf("creating the expression environment: %v", err)}}
	}
	r := &Router{}
	for i, rt := range routes {
		path := fmt.Sprintf("route[%d]", i)
		last := i == len(routes)-1
		switch {
		case rt.Sink == "":
			add(path+".sink", "is required")
		case !sinks[rt.Sink]:
			add(path+".sink", fmt.Sprintf("%q is not one of the pipeline's sinks", rt.Sink))
		}
		cr := compiledRoute{path: path, sink: rt.Sink}
		switch {
		case rt.When == "" && !last:
			add(path+".when", "is required on every entry but the last (the default)")
		case rt.When != "" && last:
			add(path+".when", "the last entry is the default for records no other entry matches: leave out its when")
		case rt.When != "":
			cr.when, _ = program(e, rt.When, path+".when", cel.BoolType, add)
		}
		r.routes = append(r.routes, cr)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return r, nil
}

// Route returns the name of rec's sink. An expression that fails on rec
// is a *connector.RecordError (reason "transform") naming the entry.
func (r *Router) Route(rec *connector.Record) (string, error) {
	act := newActivation(rec)
	defer act.release()
	for _, cr := range r.routes {
		if cr.when.program == nil {
			return cr.sink, nil
		}
		keep, err := evalBool(&cr.when, act, cr.path, ".when")
		if err != nil {
			return "", &connector.RecordError{Record: rec, Reason: ReasonTransform, Err: err}
		}
		if keep {
			return cr.sink, nil
		}
	}
	// Unreachable: the last route has no when (checked at compile).
	return r.routes[len(r.routes)-1].sink, nil
}
