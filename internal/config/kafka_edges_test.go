package config

import (
	"strings"
	"testing"
)

// TestKafkaConsumersZeroIsAnError: an explicit `consumers: 0` was taken as
// "unset" and silently became 1, while -3 was refused.
func TestKafkaConsumersZeroIsAnError(t *testing.T) {
	for _, n := range []string{"0", "-3", "257"} {
		_, err := Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g, consumers: `+n+`}}
sink: {file: {path: out.jsonl}}
`), noEnv)
		if want := "source.kafka.consumers: must be between 1 and 256"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("consumers: %s: error %v, want one containing %q", n, err, want)
		}
	}
	// In a list of pipelines too, with the pipeline's path.
	_, err := Parse([]byte(`
pipelines:
  - name: a
    source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
    sink: {file: {path: a.jsonl}}
  - name: b
    source: {kafka: {brokers: [b:9092], topics: [t], group: g, consumers: 0}}
    sink: {file: {path: b.jsonl}}
`), noEnv)
	if want := "pipelines[1].source.kafka.consumers: must be between 1 and 256"; err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "pipelines[0]") {
		t.Errorf("error %v, want only %q", err, want)
	}
	// Left out, it is 1.
	f, err := Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {file: {path: out.jsonl}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Pipelines[0].Source.Kafka.Consumers; got != 1 {
		t.Fatalf("consumers left out = %d, want 1", got)
	}
}

// TestMaxBufferedRecordsOnASourceIsRefused: the property mapped to a
// producer-only client option and did nothing on a consumer.
func TestMaxBufferedRecordsOnASourceIsRefused(t *testing.T) {
	_, err := Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g, properties: {max.buffered.records: 1000}}}
sink: {file: {path: out.jsonl}}
`), noEnv)
	for _, want := range []string{"source.kafka.properties.max.buffered.records: is a producer setting", "limits.max_in_flight_records"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
	// A live change through the admin API is refused the same way.
	if _, probs := ParseConsumerProperties(map[string]any{"max.buffered.records": 5}); len(probs) != 1 || !strings.Contains(probs[0].Problem, "limits.max_in_flight_records") {
		t.Fatalf("problems %v", probs)
	}
}

func TestKafkaSinkCreateTopic(t *testing.T) {
	f, err := Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {kafka: {brokers: [b:9092], topic: out, create_topic: {partitions: 6, replication_factor: 3}}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c := f.Pipelines[0].Sink.Kafka.CreateTopic; c == nil || c.Partitions != 6 || c.ReplicationFactor != 3 {
		t.Fatalf("create_topic = %+v", c)
	}
	_, err = Parse([]byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {kafka: {brokers: [b:9092], topic: out, create_topic: {partitions: -1, replication_factor: -2, replicas: 3}}}
`), noEnv)
	for _, want := range []string{"sink.kafka.create_topic.partitions: must be > 0", "sink.kafka.create_topic.replication_factor: must be > 0", "sink.kafka.create_topic.replicas: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

// TestPubSubConsumersZeroIsAnError: as for Kafka, an explicit 0 silently
// became 1.
func TestPubSubConsumersZeroIsAnError(t *testing.T) {
	_, err := Parse([]byte(`
name: x
source: {pubsub: {project: p, subscription: s, consumers: 0}}
sink: {file: {path: out.jsonl}}
`), noEnv)
	if want := "source.pubsub.consumers: must be > 0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
