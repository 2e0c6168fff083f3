package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ConsumerProperties are the Kafka consumer properties Sluice understands,
// parsed. Zero values mean "the client's default", noted beside each
// (Kafka's, except where it says otherwise).
type ConsumerProperties struct {
	MaxPollRecords         int           // max.poll.records; default batch.max_records (Kafka's: 500)
	FetchMinBytes          int32         // fetch.min.bytes; default 1
	FetchMaxWait           time.Duration // fetch.max.wait.ms; default 5s, franz-go's (Kafka's: 500ms)
	FetchMaxBytes          int32         // fetch.max.bytes; default 52428800
	MaxPartitionFetchBytes int32         // max.partition.fetch.bytes; default 1048576
	SessionTimeout         time.Duration // session.timeout.ms; default 45000
	HeartbeatInterval      time.Duration // heartbeat.interval.ms; default 3000
	RebalanceTimeout       time.Duration // rebalance.timeout.ms (max.poll.interval.ms); default 60000
	AutoCommitInterval     time.Duration // auto.commit.interval.ms; default 1000 (Sluice commits acked offsets this often)
	CommitEveryRecords     int           // commit.every.records (Sluice's): also commit once this many records were acked; default 10000
	AssignmentStrategy     []string      // partition.assignment.strategy; default cooperative-sticky
	ClientID               string        // client.id; default sluice
	GroupInstanceID        string        // group.instance.id; static membership (each consumer appends its name)
	ConnectionsMaxIdle     time.Duration // connections.max.idle.ms
	RequestTimeoutOverhead time.Duration // request.timeout.ms
	MetadataMaxAge         time.Duration // metadata.max.age.ms
}

type propSpec struct {
	kind string // int, bytes, ms, string, list
	set  func(*ConsumerProperties, any)
}

var consumerProps = map[string]propSpec{
	"max.poll.records":              {"int", func(p *ConsumerProperties, v any) { p.MaxPollRecords = int(v.(int64)) }},
	"fetch.min.bytes":               {"int", func(p *ConsumerProperties, v any) { p.FetchMinBytes = int32(v.(int64)) }},
	"fetch.max.wait.ms":             {"ms", func(p *ConsumerProperties, v any) { p.FetchMaxWait = v.(time.Duration) }},
	"fetch.max.bytes":               {"int", func(p *ConsumerProperties, v any) { p.FetchMaxBytes = int32(v.(int64)) }},
	"max.partition.fetch.bytes":     {"int", func(p *ConsumerProperties, v any) { p.MaxPartitionFetchBytes = int32(v.(int64)) }},
	"session.timeout.ms":            {"ms", func(p *ConsumerProperties, v any) { p.SessionTimeout = v.(time.Duration) }},
	"heartbeat.interval.ms":         {"ms", func(p *ConsumerProperties, v any) { p.HeartbeatInterval = v.(time.Duration) }},
	"rebalance.timeout.ms":          {"ms", func(p *ConsumerProperties, v any) { p.RebalanceTimeout = v.(time.Duration) }},
	"max.poll.interval.ms":          {"ms", func(p *ConsumerProperties, v any) { p.RebalanceTimeout = v.(time.Duration) }},
	"auto.commit.interval.ms":       {"ms", func(p *ConsumerProperties, v any) { p.AutoCommitInterval = v.(time.Duration) }},
	"commit.every.records":          {"int", func(p *ConsumerProperties, v any) { p.CommitEveryRecords = int(v.(int64)) }},
	"partition.assignment.strategy": {"list", func(p *ConsumerProperties, v any) { p.AssignmentStrategy = v.([]string) }},
	"client.id":                     {"string", func(p *ConsumerProperties, v any) { p.ClientID = v.(string) }},
	"group.instance.id":             {"string", func(p *ConsumerProperties, v any) { p.GroupInstanceID = v.(string) }},
	"connections.max.idle.ms":       {"ms", func(p *ConsumerProperties, v any) { p.ConnectionsMaxIdle = v.(time.Duration) }},
	"request.timeout.ms":            {"ms", func(p *ConsumerProperties, v any) { p.RequestTimeoutOverhead = v.(time.Duration) }},
	"metadata.max.age.ms":           {"ms", func(p *ConsumerProperties, v any) { p.MetadataMaxAge = v.(time.Duration) }},
}

// refusedProps are names users reach for that a Sluice consumer cannot
// honour, each with what to use instead. They are errors rather than
// unknown-property errors so the message can say why.
var refusedProps = map[string]string{
	// franz-go's MaxBufferedRecords bounds the producer's buffer only: it
	// was once accepted here and silently did nothing.
	"max.buffered.records": "is a producer setting and has no effect on a consumer; " +
		"bound the records a pipeline holds with limits.max_in_flight_records (read but not yet written; reading stops when reached) " +
		"and what one fetch buffers with fetch.max.bytes and max.partition.fetch.bytes",
}

// AssignmentStrategies maps partition.assignment.strategy values, by their
// Java class names or short names, to short names.
var AssignmentStrategies = map[string]string{
	"cooperative-sticky": "cooperative-sticky",
	"org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
	"sticky": "sticky",
	"org.apache.kafka.clients.consumer.StickyAssignor": "sticky",
	"range": "range",
	"org.apache.kafka.clients.consumer.RangeAssignor": "range",
	"roundrobin": "roundrobin",
	"org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
}

// PropertyProblem is one bad consumer property.
type PropertyProblem struct {
	Name    string
	Problem string
}

// KnownConsumerProperties lists the property names Sluice accepts.
func KnownConsumerProperties() []string {
	names := make([]string, 0, len(consumerProps))
	for k := range consumerProps {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ValidateConsumerProperties reports every unknown or malformed property.
func ValidateConsumerProperties(props map[string]any) []PropertyProblem {
	_, probs := ParseConsumerProperties(props)
	return probs
}

// ParseConsumerProperties parses Kafka consumer properties. Values may be
// YAML numbers or strings ("5000").
func ParseConsumerProperties(props map[string]any) (ConsumerProperties, []PropertyProblem) {
	var out ConsumerProperties
	var probs []PropertyProblem
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	parsed := make(map[string]any, len(props))
	for _, name := range names {
		raw := props[name]
		if why, refused := refusedProps[name]; refused {
			probs = append(probs, PropertyProblem{name, why})
			continue
		}
		spec, ok := consumerProps[name]
		if !ok {
			probs = append(probs, PropertyProblem{name, "unknown consumer property; known: " + strings.Join(KnownConsumerProperties(), ", ")})
			continue
		}
		v, err := parseProp(spec.kind, raw)
		if err != nil {
			probs = append(probs, PropertyProblem{name, err.Error()})
			continue
		}
		spec.set(&out, v)
		parsed[name] = raw
	}
	return out, append(probs, checkPropertyRanges(out, parsed)...)
}

func parseProp(kind string, raw any) (any, error) {
	s := strings.TrimSpace(fmt.Sprint(raw))
	switch kind {
	case "int", "ms":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		if n < 0 || n > 1<<31-1 {
			return nil, fmt.Errorf("%d is out of range (0 to 2147483647)", n)
		}
		if kind == "ms" {
			if n == 0 {
				return nil, fmt.Errorf("must be > 0 milliseconds")
			}
			return durationMS(n), nil
		}
		return n, nil
	case "list":
		var out []string
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			short, ok := AssignmentStrategies[part]
			if !ok {
				return nil, fmt.Errorf("%q is not an assignment strategy (cooperative-sticky, sticky, range, roundrobin)", part)
			}
			out = append(out, short)
		}
		return out, nil
	default:
		if s == "" {
			return nil, fmt.Errorf("is empty")
		}
		return s, nil
	}
}
