package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAdminRefusesPropertiesOutsideKafkasRanges: PATCH {"session.timeout.ms":
// 1} was accepted, hung 120 s, answered 504 and left the consumer gone for
// good while status said running. Values Kafka or its client would refuse
// are now answered 400 naming the property, at once, nothing changes, and
// the consumers keep delivering; a value in range is applied.
func TestAdminRefusesPropertiesOutsideKafkasRanges(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "ranges.in", 3)
	createTopic(t, brokers, "ranges.out", 3)
	b, _ := runPipeline(t, fmt.Sprintf(`
name: ranges
source:
  kafka: {brokers: [%s], topics: [ranges.in], group: ranges, consumers: 2, properties: {max.poll.records: 100, session.timeout.ms: 10000}}
sink:
  kafka: {brokers: [%s], topic: ranges.out}
`, brokers[0], brokers[0]))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	base := serveAdmin(t, ctx, b, time.Second, testLogger(t))
	url := base + "/v1/pipelines/ranges"
	eventually(t, 30*time.Second, "two consumers running", func() bool { return len(pipelineDetail(t, base, "ranges").Consumers) == 2 })
	before := pipelineDetail(t, base, "ranges").Properties

	for _, tc := range []struct{ body, name string }{
		{`{"session.timeout.ms": 1}`, "session.timeout.ms"},
		{`{"session.timeout.ms": 3600000}`, "session.timeout.ms"},
		{`{"heartbeat.interval.ms": 10000}`, "heartbeat.interval.ms"},
		{`{"max.poll.records": 0}`, "max.poll.records"},
		{`{"fetch.max.bytes": 0}`, "fetch.max.bytes"},
		{`{"client.id": "sluice\nX-Injected: 1"}`, "client.id"},
	} {
		var answer map[string]string
		start := time.Now()
		code := apiCall(t, "PATCH", url+"/properties", tc.body, &answer)
		if code != 400 || !strings.Contains(answer["error"], tc.name) {
			t.Errorf("PATCH %s: %d %q, want 400 naming %s", tc.body, code, answer["error"], tc.name)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("PATCH %s took %v: a refusal must not restart anything", tc.body, took)
		}
	}
	d := pipelineDetail(t, base, "ranges")
	if fmt.Sprint(d.Properties) != fmt.Sprint(before) || len(d.Consumers) != 2 {
		t.Fatalf("after the refusals: properties %v (want %v), %d consumers", d.Properties, before, len(d.Consumers))
	}
	produceN(t, brokers, "ranges.in", 0, 500)
	if got := consumeAll(t, brokers, "ranges.out", 500, 60*time.Second); len(got) != 500 {
		t.Fatalf("%d distinct records arrived after the refusals, want 500", len(got))
	}

	var ok map[string]any
	if code := apiCall(t, "PATCH", url+"/properties", `{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}`, &ok); code != 200 {
		t.Fatalf("PATCH of values in range: %d %v", code, ok)
	}
	if p := pipelineDetail(t, base, "ranges").Properties; p["session.timeout.ms"] != float64(6000) {
		t.Fatalf("properties after an accepted change: %v", p)
	}
	produceN(t, brokers, "ranges.in", 500, 500)
	if got := consumeAll(t, brokers, "ranges.out", 1000, 60*time.Second); len(got) != 1000 {
		t.Fatalf("%d distinct records arrived after the change, want 1000", len(got))
	}
}
