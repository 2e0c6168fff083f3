package config

import (
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

const good = `
name: films
source:
  kafka:
    brokers: [localhost:9092]
    topics: [films]
    group: films-copy
    consumers: 2
    properties: {max.poll.records: 100, fetch.min.bytes: 2400, fetch.max.wait.ms: "5000"}
format: {value: json}
on_error: dlq
sink:
  kafka: {brokers: [localhost:9092], topic: "out-{{.Topic}}"}
`

func TestParseGoodFileAppliesDefaults(t *testing.T) {
	f, err := Parse([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	if p.Delivery != AtLeastOnce || p.Batch.MaxRecords != 10000 || p.Sink.Kafka.Acks != "all" || p.Sink.Kafka.Compression != "lz4" {
		t.Fatalf("defaults not applied: %+v", p)
	}
	props, probs := ParseConsumerProperties(p.Source.Kafka.Properties)
	if len(probs) > 0 || props.MaxPollRecords != 100 || props.FetchMinBytes != 2400 || props.FetchMaxWait.Milliseconds() != 5000 {
		t.Fatalf("properties = %+v, problems %v", props, probs)
	}
}

func TestBadFilesReportEveryProblemWithItsPath(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown keys anywhere", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g, consumerz: 2}
sink:
  kafka: {brokers: [b:9092], topic: o, acks: all, compresion: lz4}
`, []string{"source.kafka.consumerz: unknown key (line 4)", "sink.kafka.compresion: unknown key (line 6)"}},
		{"missing and bad values together", `
name: "bad name!"
source:
  kafka: {topics: [t], consumers: -1, start_from: middle, group_protocol: next}
sink:
  kafka: {brokers: [b:9092], topic: o, acks: two}
on_error: ignore
`, []string{
			"name: must be 1-100 letters",
			"source.kafka.brokers: is required",
			"source.kafka.group: is required",
			"source.kafka.consumers: must be between 1 and 256",
			`source.kafka.start_from: "middle" is not one of earliest, latest`,
			`source.kafka.group_protocol: "next" is not one of classic, consumer`,
			`sink.kafka.acks: "two" is not one of all, 1, 0, -1`,
			`on_error: "ignore" is not one of dlq, fail, skip`,
		}},
		{"bad consumer properties", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g, properties: {max.pol.records: 5, fetch.min.bytes: lots, partition.assignment.strategy: fair, commit.every.records: "-5"}}
sink:
  file: {path: out.jsonl}
`, []string{
			"source.kafka.properties.max.pol.records: unknown consumer property",
			`source.kafka.properties.fetch.min.bytes: "lots" is not a whole number`,
			`source.kafka.properties.partition.assignment.strategy: "fair" is not an assignment strategy`,
			`source.kafka.properties.commit.every.records: -5 is out of range`,
		}},
		{"two sinks", `
name: x
source:
  kafka: {brokers: [b:9092], topics: [t], group: g}
sink:
  kafka: {brokers: [b:9092], topic: o}
  file: {path: out.jsonl}
`, []string{"sink: exactly one sink is needed", "found 2: kafka, file"}},
		{"bad template and regex", `
name: x
source:
  kafka: {brokers: [b:9092], topic_regex: "orders.(", group: g}
sink:
  kafka: {brokers: [b:9092], topic: "out-{{.Topic"}
`, []string{"source.kafka.topic_regex: bad regular expression", "sink.kafka.topic: bad template"}},
		{"unset environment variable", `
name: x
source:
  kafka: {brokers: ["${KAFKA_BROKERS}"], topics: [t], group: g}
sink:
  file: {path: out.jsonl}
`, []string{"${KAFKA_BROKERS}: environment variable is not set"}},
		{"list of pipelines with a duplicate name", `
pipelines:
  - name: a
    source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
    sink: {file: {path: a.jsonl}}
  - name: a
    source: {kafka: {brokers: [b:9092], topics: [t], group: g, bogus: 1}}
    sink: {file: {path: b.jsonl}}
`, []string{"pipelines[1].source.kafka.bogus: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestEnvExpansionAndRedaction(t *testing.T) {
	env := map[string]string{"PASS": "s3cr#t: x", "BROKERS": "k1:9092"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f, err := Parse([]byte(`
name: x
source:
  kafka:
    brokers: ["${BROKERS}"]
    topics: [t]
    group: g
    sasl: {mechanism: PLAIN, username: u, password: "${PASS}"}
    tls: {enabled: true}
sink:
  file: {path: "${OUT:-out.jsonl}"}
`), lookup)
	if err != nil {
		t.Fatal(err)
	}
	k := f.Pipelines[0].Source.Kafka
	if k.Brokers[0] != "k1:9092" || k.SASL.Password != "s3cr#t: x" || f.Pipelines[0].Sink.File.Path != "out.jsonl" {
		t.Fatalf("expansion wrong: brokers %v password %q path %q", k.Brokers, k.SASL.Password, f.Pipelines[0].Sink.File.Path)
	}
	printed := f.YAML()
	if strings.Contains(printed, "s3cr#t") || !strings.Contains(printed, Redacted) {
		t.Fatalf("secret not redacted in printed config:\n%s", printed)
	}
	if k.SASL.Password != "s3cr#t: x" {
		t.Fatal("redaction modified the original config")
	}
}

func TestKafkaSinkExactlyOnce(t *testing.T) {
	f, err := Parse([]byte(`
name: p
delivery: exactly_once
source: {kafka: {brokers: [x], topics: [t], group: g}}
sink: {kafka: {brokers: [x], topic: out}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if k := f.Pipelines[0].Sink.Kafka; k.TransactionTimeout != 10*time.Second || k.TransactionalIDPrefix != "" {
		t.Fatalf("defaults: timeout %v, prefix %q", k.TransactionTimeout, k.TransactionalIDPrefix)
	}
	// A transaction per batch: larger batches by default, unless the
	// in-flight limit set is smaller.
	if p := f.Pipelines[0]; p.Batch.MaxRecords != 50000 || p.Limits.MaxInFlightRecords != 100000 {
		t.Fatalf("batch %d, in flight %d", p.Batch.MaxRecords, p.Limits.MaxInFlightRecords)
	}
	f, err = Parse([]byte(`
name: p
delivery: exactly_once
source: {kafka: {brokers: [x], topics: [t], group: g}}
sink: {kafka: {brokers: [x], topic: out}}
limits: {max_in_flight_records: 20000}
`), noEnv)
	if err != nil || f.Pipelines[0].Batch.MaxRecords != 20000 {
		t.Fatalf("batch with a smaller in-flight limit: %v", err)
	}
	_, err = Parse([]byte(`
name: p
delivery: exactly_once
source: {kafka: {brokers: [x], topics: [t], group: g}}
sink: {kafka: {brokers: [x], topic: out, acks: "1", transaction_timeout: 1h}}
`), noEnv)
	for _, w := range []string{"sink.kafka.acks: delivery: exactly_once (Kafka transactions) requires acks: all", "sink.kafka.transaction_timeout: 1h0m0s is outside 1ms-15m"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}
