package config

import (
	"strings"
	"testing"
)

// TestConsumerPropertiesOutsideKafkasRangesAreRefused: the admin API took
// {"session.timeout.ms": 1}, and the consumer never came back. Every value
// Kafka or the client would refuse is now refused by name, up front.
func TestConsumerPropertiesOutsideKafkasRangesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		props map[string]any
		name  string // the property the problem names; "" when accepted
		want  string
	}{
		{map[string]any{"session.timeout.ms": 1}, "session.timeout.ms", "between 6000 and 1800000"},
		{map[string]any{"session.timeout.ms": 1800001}, "session.timeout.ms", "between 6000 and 1800000"},
		{map[string]any{"session.timeout.ms": 6000}, "", ""},
		{map[string]any{"heartbeat.interval.ms": 50000}, "heartbeat.interval.ms", "less than session.timeout.ms (45000)"},
		{map[string]any{"session.timeout.ms": 6000, "heartbeat.interval.ms": 6000}, "heartbeat.interval.ms", "less than session.timeout.ms (6000)"},
		{map[string]any{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}, "", ""},
		{map[string]any{"max.poll.records": 0}, "max.poll.records", "at least 1"},
		{map[string]any{"fetch.max.bytes": 0}, "fetch.max.bytes", "between 1 and"},
		{map[string]any{"fetch.max.bytes": 200 << 20}, "fetch.max.bytes", "between 1 and 104857600"},
		{map[string]any{"max.partition.fetch.bytes": 0}, "max.partition.fetch.bytes", "at least 1"},
		{map[string]any{"fetch.max.wait.ms": 1}, "fetch.max.wait.ms", "between 10 and"},
		{map[string]any{"metadata.max.age.ms": 100}, "metadata.max.age.ms", "between 5000 and 3600000"},
		{map[string]any{"client.id": "a\nb"}, "client.id", "control characters"},
		{map[string]any{"client.id": "a\x00b"}, "client.id", "control characters"},
		{map[string]any{"client.id": strings.Repeat("x", 257)}, "client.id", "at most 256"},
		{map[string]any{"group.instance.id": "a\rb"}, "group.instance.id", "control characters"},
		{map[string]any{"client.id": "films-ü"}, "", ""},
	} {
		_, probs := ParseConsumerProperties(tc.props)
		if tc.name == "" {
			if len(probs) > 0 {
				t.Errorf("%v: refused: %v", tc.props, probs)
			}
			continue
		}
		if len(probs) != 1 || probs[0].Name != tc.name || !strings.Contains(probs[0].Problem, tc.want) {
			t.Errorf("%v: problems %+v, want one naming %s with %q", tc.props, probs, tc.name, tc.want)
		}
	}
}
