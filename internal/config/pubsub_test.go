package config

import (
	"strings"
	"testing"
	"time"
)

func TestPubSubSourceDefaultsAndPaths(t *testing.T) {
	f, err := Parse([]byte(`
name: alerts
source:
  pubsub: {project: demo, subscription: alerts, emulator_host: 127.0.0.1:8085}
sink:
  kafka: {brokers: [localhost:9092], topic: "{{.Topic}}"}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ps := f.Pipelines[0].Source.PubSub
	if ps.KeyFrom != KeyFromOrderingKey || ps.Consumers != 1 || ps.Streams != 4 || ps.MaxOutstandingMessages != 1000 || ps.MaxOutstandingBytes != 64<<20 || ps.MaxAckExtension != time.Minute {
		t.Fatalf("defaults: %+v", ps)
	}
	if got := ps.SubscriptionPath(); got != "projects/demo/subscriptions/alerts" {
		t.Fatalf("SubscriptionPath = %q", got)
	}
	if f.Pipelines[0].Source.Consumers() != 1 {
		t.Fatal("Consumers() != 1")
	}
	full := PubSubSource{Subscription: "projects/p1/subscriptions/s1", KeyFrom: "attribute:device"}
	if full.SubscriptionPath() != "projects/p1/subscriptions/s1" || full.KeyAttribute() != "device" {
		t.Fatalf("full path %q, key attribute %q", full.SubscriptionPath(), full.KeyAttribute())
	}
}

func TestPubSubSourceProblemsHaveTheirPaths(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing", `source: {pubsub: {}}`, []string{"source.pubsub.subscription: is required", "source.pubsub.project: is required"}},
		{"bad names", `source: {pubsub: {project: "Demo!", subscription: "1x"}}`, []string{"source.pubsub.project: \"Demo!\" is not", "source.pubsub.subscription: \"1x\" is not a subscription ID"}},
		{"bad key_from", `source: {pubsub: {project: demo, subscription: alerts, key_from: "attribute:"}}`, []string{"source.pubsub.key_from: \"attribute:\" is not one of"}},
		{"emulator and credentials", `source: {pubsub: {project: demo, subscription: alerts, emulator_host: "x:1", credentials_file: c.json}}`, []string{"source.pubsub.credentials_file: is not used with emulator_host"}},
		{"two sources", `source: {pubsub: {project: demo, subscription: alerts}, kafka: {brokers: [x], topics: [t], group: g}}`, []string{"source: exactly one source is needed (kafka or pubsub)"}},
		{"exactly once", `source: {pubsub: {project: demo, subscription: alerts}}
delivery: exactly_once`, []string{"delivery: exactly_once keeps Kafka offsets"}},
		{"ack extension out of range", `source: {pubsub: {project: demo, subscription: alerts, max_ack_extension: 5s}}`, []string{"source.pubsub.max_ack_extension: 5s is outside Pub/Sub's 10s-600s"}},
		{"dlq needs brokers", `source: {pubsub: {project: demo, subscription: alerts}}
on_error: dlq`, []string{"dlq.brokers: is required with on_error: dlq"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("name: p\n"+tc.yaml+"\nsink: {file: {path: out.jsonl}}\n"), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPubSubSinkProblemsHaveTheirPaths(t *testing.T) {
	_, err := Parse([]byte(`
name: p
source: {kafka: {brokers: [x], topics: [t], group: g}}
delivery: exactly_once
sink: {pubsub: {ordering_key: sometimes, topic: "{{.Nope"}}
`), noEnv)
	for _, w := range []string{"sink.pubsub.topic: bad template", "sink.pubsub.project: is required", `sink.pubsub.ordering_key: "sometimes" is not one of key, none`, "exactly_once is not supported by the pubsub sink"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	f, err := Parse([]byte(`
name: p
source: {kafka: {brokers: [x], topics: [t], group: g}}
sink: {pubsub: {project: demo, topic: "{{.Topic}}"}}
`), noEnv)
	if err != nil || f.Pipelines[0].Sink.PubSub.OrderingKey != "key" {
		t.Fatalf("defaults: %v, %+v", err, f)
	}
}
