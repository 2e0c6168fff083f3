package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Timestamp is the pipeline's timestamp policy: which time each record
// carries to the sink (the Kafka sink's record timestamp, the SQL
// _timestamp column, BigQuery's _sluice_timestamp) and to the watermark.
type Timestamp struct {
	// Policy is one of:
	//   source (default): the timestamp the source gave, as it is (Kafka:
	//     CreateTime or LogAppendTime, as the topic stores it; Pub/Sub:
	//     the publish time);
	//   create_time / log_append_time: the Kafka record timestamp, which
	//     must be of that type (a record whose timestamp is of the other
	//     type is bad input, routed by on_error);
	//   processing_time: when Sluice read the record;
	//   field: the decoded value's field named by Field.
	Policy string `yaml:"policy" default:"source" enum:"source|create_time|log_append_time|processing_time|field" doc:"source (the source's own timestamp), create_time or log_append_time (the Kafka timestamp, which must be of that type), processing_time (when read), or field (a field of the decoded value)."`
	// Field is the dotted path of the event-time field (policy field).
	Field string `yaml:"field" doc:"With policy field: the dotted path of the event-time field." example:"meta.occurred_at"`
	// Format says how Field is written: rfc3339 (default; also takes
	// time values of Avro), unix (seconds), unix_ms, or a Go time layout
	// such as "2006-01-02 15:04:05". A record whose field is missing or
	// does not parse is bad input, routed by on_error, never defaulted.
	Format string `yaml:"format" doc:"With policy field: rfc3339 (default), unix, unix_ms or a Go time layout; a missing or unparseable field is bad input, routed by on_error." example:"unix_ms"`
	// IdlePartitionTimeout: a partition from which nothing was read for
	// this long, with nothing in flight, no longer holds the watermark
	// back; default 30s.
	IdlePartitionTimeout time.Duration `yaml:"idle_partition_timeout" default:"30s" min:"1ns" doc:"A partition with nothing in flight and nothing read for this long no longer holds the watermark back."`
}

// Timestamp policies.
const (
	TimestampSource         = "source"
	TimestampCreateTime     = "create_time"
	TimestampLogAppendTime  = "log_append_time"
	TimestampProcessingTime = "processing_time"
	TimestampField          = "field"
)

// NeedsFields reports whether the policy reads the decoded value, which
// the engine must then decode (sinks that decode values themselves
// cannot be handed them undecoded).
func (t *Timestamp) NeedsFields() bool { return t.Policy == TimestampField }

func (t *Timestamp) validate(v *validator, p *Pipeline) {
	switch t.Policy {
	case TimestampField:
		v.required("field", t.Field)
		if t.Format != "" && !strings.Contains(t.Format, "2006") && t.Format != "rfc3339" && t.Format != "unix" && t.Format != "unix_ms" {
			v.add("format", fmt.Sprintf("%q is not rfc3339, unix, unix_ms or a Go time layout (such as 2006-01-02T15:04:05)", t.Format))
		}
		if p.Format.Value == "" || p.Format.Value == "raw" {
			v.add("field", "needs decoded values: set format.value to json or avro-confluent")
		}
	case TimestampCreateTime, TimestampLogAppendTime:
		if p.Source.Kafka == nil {
			v.add("policy", t.Policy+" is a Kafka record timestamp; a pubsub source has its publish time (policy source)")
		}
		fallthrough
	default:
		if t.Field != "" || (t.Format != "" && t.Policy != TimestampField) {
			v.add("field", "field and format are only for policy field")
		}
	}
}

// StopAt makes a Kafka source bounded (a backfill, a test): the pipeline
// drains, commits and exits once it is reached. Written `stop_at: end`
// (the end offsets seen at start) or as a mapping of limits; whichever is
// reached first stops it.
type StopAt struct {
	// End: stop once every partition reached the end offset it had when
	// the pipeline started.
	End bool `yaml:"end" doc:"Stop once every partition reached the end offset it had at the start."`
	// MaxRecords: stop after this many records were read (over all
	// consumers of the process; what was read is written and committed).
	MaxRecords int64 `yaml:"max_records" doc:"Stop after this many records were read, over the process's consumers." example:"1000000"`
	// MaxReadTime: stop reading this long after the start (Beam's
	// max_read_time_seconds).
	MaxReadTime time.Duration `yaml:"max_read_time" doc:"Stop reading this long after the start, then drain." example:"60s"`
}

// UnmarshalYAML accepts the scalar `end` as well as the mapping.
func (s *StopAt) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "end" {
			return fmt.Errorf("line %d: stop_at: %q is not end (or a mapping of end, max_records, max_read_time)", n.Line, n.Value)
		}
		*s = StopAt{End: true}
		return nil
	}
	type plain StopAt
	var p plain
	err := n.Decode(&p)
	*s = StopAt(p)
	return err
}

// validate checks s; v is the source's validator.
func (s *StopAt) validate(v *validator) {
	if !s.End && s.MaxRecords == 0 && s.MaxReadTime == 0 {
		v.add("stop_at", "needs end, max_records or max_read_time")
	}
	if s.MaxRecords < 0 {
		v.add("stop_at.max_records", "must be > 0")
	}
	if s.MaxReadTime < 0 {
		v.add("stop_at.max_read_time", "must be a positive duration such as 60s")
	}
}
