package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTimestampAndStopAt(t *testing.T) {
	base := `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g%s}
format: {value: json}
sink:
  kafka: {brokers: [b:9092], topic: o}
%s
`
	tests := []struct {
		name, source, pipeline string
		want                   []string // problems; none: valid
		check                  func(t *testing.T, p Pipeline)
	}{
		{"defaults", "", "", nil, func(t *testing.T, p Pipeline) {
			if p.Timestamp.Policy != TimestampSource || p.Timestamp.IdlePartitionTimeout != 30*time.Second || p.Source.Kafka.StopAt != nil {
				t.Fatalf("defaults: %+v, stop_at %v", p.Timestamp, p.Source.Kafka.StopAt)
			}
		}},
		{"stop_at end", ", stop_at: end", "", nil, func(t *testing.T, p Pipeline) {
			if s := p.Source.Kafka.StopAt; s == nil || !s.End {
				t.Fatalf("stop_at: %+v", s)
			}
		}},
		{"stop_at limits", ", stop_at: {max_records: 10, max_read_time: 60s}", "", nil, func(t *testing.T, p Pipeline) {
			if s := p.Source.Kafka.StopAt; s == nil || s.End || s.MaxRecords != 10 || s.MaxReadTime != time.Minute {
				t.Fatalf("stop_at: %+v", s)
			}
		}},
		{"field policy", "", "timestamp: {policy: field, field: a.b, format: unix_ms, idle_partition_timeout: 5s}", nil, func(t *testing.T, p Pipeline) {
			if ts := p.Timestamp; ts.Field != "a.b" || ts.Format != "unix_ms" || ts.IdlePartitionTimeout != 5*time.Second || !ts.NeedsFields() {
				t.Fatalf("timestamp: %+v", ts)
			}
		}},
		{"stop_at typo", ", stop_at: ends", "", []string{`stop_at: "ends" is not end`}, nil},
		{"stop_at empty and negative", ", stop_at: {max_records: -1}", "", []string{"source.kafka.stop_at.max_records: must be > 0"}, nil},
		{"bad policies", "", "timestamp: {policy: field, format: whenever}", []string{
			"timestamp.field: is required", `timestamp.format: "whenever" is not rfc3339`}, nil},
		{"field without a field policy", "", "timestamp: {policy: processing_time, field: at}", []string{
			"timestamp.field: field and format are only for policy field"}, nil},
		{"unknown policy", "", "timestamp: {policy: event_time}", []string{`timestamp.policy: "event_time" is not one of source, create_time`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(strings.ReplaceAll(fmt.Sprintf(base, tc.source, tc.pipeline), "\t", "")), noEnv)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, f.Pipelines[0])
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems %q do not say %q", err, w)
				}
			}
		})
	}
}
