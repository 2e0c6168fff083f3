package config

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/sluice-dev/sluice/internal/transform"
)

var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$`)

// validateRoutes checks a pipeline with several named sinks: each is a
// valid sink, and the route list names only them and ends with a default.
func (p *Pipeline) validateRoutes(v *validator) {
	if len(p.Sink.sinkKeys()) > 0 {
		v.add("sink", "use either sink or sinks with route, not both")
	}
	if len(p.Sinks) == 0 {
		v.add("sinks", "route needs named sinks: sinks: {NAME: {postgres: ...}, ...}")
		return
	}
	if p.Delivery == ExactlyOnce {
		v.add("delivery", "exactly_once keeps offsets with one sink's data; with several sinks use at_least_once")
	}
	names := map[string]bool{}
	for _, name := range sortedSinkNames(p.Sinks) {
		names[name] = true
		if !sinkName.MatchString(name) {
			v.add("sinks."+name, "a sink name is 1-50 letters, digits, '_' or '-'")
		}
		s := p.Sinks[name]
		s.validate(v.sub("sinks."+name), p)
	}
	for _, prob := range transform.CheckRoutes(p.Route, names) {
		v.add(prob.Path, prob.Msg)
	}
	used := map[string]bool{}
	for _, r := range p.Route {
		used[r.Sink] = true
	}
	for _, name := range sortedSinkNames(p.Sinks) {
		if !used[name] {
			v.add("sinks."+name, fmt.Sprintf("no route sends records to %s", name))
		}
	}
}

func sortedSinkNames(m map[string]Sink) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
