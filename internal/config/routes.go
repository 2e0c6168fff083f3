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
		p.validateExactlyOnceRoutes(v)
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

// validateExactlyOnceRoutes checks what exactly-once with several sinks
// needs (internal/connector/route/offsets.go): each sink keeps its own
// position, a Kafka sink in the source group's committed offsets, so two
// Kafka sinks would share one; and a partition that one sink has no
// position for yet resumes from start_from, which must then be earliest.
// Each sink's own support of exactly_once is checked with the sink.
func (p *Pipeline) validateExactlyOnceRoutes(v *validator) {
	var kafka, stores []string
	for _, name := range sortedSinkNames(p.Sinks) {
		s := p.Sinks[name]
		switch {
		case s.Kafka != nil:
			kafka = append(kafka, name)
		case s.Postgres != nil || s.MySQL != nil || s.SQLite != nil:
			stores = append(stores, name)
		}
	}
	if len(kafka) > 1 {
		v.add("sinks", fmt.Sprintf("delivery: exactly_once keeps a kafka sink's position in the source group's offsets, so a route can have one kafka sink, not %d (%v)", len(kafka), kafka))
	}
	if len(kafka) > 0 && len(stores) > 0 && p.Source.Kafka != nil && p.Source.Kafka.StartFrom == "latest" {
		v.add("source.kafka.start_from", "delivery: exactly_once with a kafka and a database sink resumes a partition one of them holds nothing of from start_from; latest would skip records: use earliest")
	}
}
