package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupInstanceIDDoesNotFenceOtherConsumers: with group.instance.id
// set, every reader of the process joined with the same instance id, so
// the group kept only the newest of them and fenced the others.
func TestGroupInstanceIDDoesNotFenceOtherConsumers(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "static.in", 6)
	createTopic(t, brokers, "static.out", 6)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: static
source:
  kafka:
    brokers: [%[1]s]
    topics: [static.in]
    group: static
    consumers: 2
    properties: {group.instance.id: host-a}
sink:
  kafka: {brokers: [%[1]s], topic: static.out}
`, brokers[0]))
	p := b.Pipeline
	eventually(t, 30*time.Second, "the pipeline running", func() bool { return p.Status().State == pipeline.StateRunning })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	added, err := p.AddConsumer(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	// Every consumer of the process stays a member of the group, under its
	// own instance id, and owns partitions.
	adm := adminClient(t, brokers)
	want := []string{"host-a-static-1", "host-a-static-2", "host-a-" + added}
	sort.Strings(want)
	eventually(t, 60*time.Second, "3 static members, each with partitions", func() bool {
		groups, err := adm.DescribeGroups(context.Background(), "static")
		if err != nil {
			return false
		}
		g := groups["static"]
		if g.State != "Stable" || len(g.Members) != 3 {
			return false
		}
		var ids []string
		for _, m := range g.Members {
			if m.InstanceID == nil {
				return false
			}
			ids = append(ids, *m.InstanceID)
			if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) == 0 {
				return false
			}
		}
		sort.Strings(ids)
		return fmt.Sprint(ids) == fmt.Sprint(want)
	})
	eventually(t, 30*time.Second, "every consumer of the pipeline owning partitions", func() bool {
		cs := p.Status().Consumers
		if len(cs) != 3 {
			return false
		}
		for _, c := range cs {
			if len(c.Assigned) == 0 {
				return false
			}
		}
		return true
	})

	// And they all consume: every record arrives once the group is stable.
	const n = 3000
	produceN(t, brokers, "static.in", 0, n)
	got := consumeAll(t, brokers, "static.out", n, 60*time.Second)
	if len(got) != n {
		t.Fatalf("static.out has %d distinct records, want %d", len(got), n)
	}
	waitCommittedToEnd(t, adm, "static", "static.in", 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if st := p.Status(); st.Errors != 0 {
		t.Fatalf("status counts %d errors", st.Errors)
	}
}

// TestFencedConsumerStopsThePipeline: a process whose group.instance.id
// another process took is fenced for good; its consumer retried forever
// and the pipeline kept saying running. Now the fenced pipeline stops,
// naming the reason, while the other one keeps consuming.
func TestFencedConsumerStopsThePipeline(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "fenced.in", 3)
	createTopic(t, brokers, "fenced.out", 3)
	yaml := fmt.Sprintf(`
name: fenced
source:
  kafka: {brokers: [%[1]s], topics: [fenced.in], group: fenced, properties: {group.instance.id: same-host}}
sink:
  kafka: {brokers: [%[1]s], topic: fenced.out}
shutdown_timeout: 5s
`, brokers[0])
	first, _ := runPipeline(t, yaml)
	eventually(t, 30*time.Second, "the first process owning partitions", func() bool {
		cs := first.Pipeline.Status().Consumers
		return len(cs) == 1 && len(cs[0].Assigned) > 0
	})
	second, _ := runPipeline(t, yaml)
	eventually(t, 60*time.Second, "the fenced process failing", func() bool { return first.Pipeline.Status().State == pipeline.StateFailed })
	if st := first.Pipeline.Status(); !strings.Contains(st.Error, "FENCED_INSTANCE_ID") || !strings.Contains(st.Error, "consumer fenced-1") {
		t.Fatalf("status error %q; want the consumer and FENCED_INSTANCE_ID", st.Error)
	}
	produceN(t, brokers, "fenced.in", 0, 300)
	if got := consumeAll(t, brokers, "fenced.out", 300, 60*time.Second); len(got) != 300 {
		t.Fatalf("the process that took over wrote %d of 300 records", len(got))
	}
	if st := second.Pipeline.Status(); st.State != pipeline.StateRunning {
		t.Fatalf("the second process is %s (%s)", st.State, st.Error)
	}
}

// readmeFirstPipeline returns the first YAML block of the README's "A
// pipeline" section.
func readmeFirstPipeline(t *testing.T) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "## A pipeline")
	if i < 0 {
		t.Fatal(`README.md has no "## A pipeline" section`)
	}
	text = text[i:]
	start := strings.Index(text, "```yaml\n")
	end := strings.Index(text[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no YAML block in the README's pipeline section")
	}
	return text[start+8 : start+8+end]
}

// TestREADMEFirstPipelineRunsAgainstAFreshDevStack: the README's first
// example writes to copy-{{.Topic}}, which a fresh `sluice dev` does not
// have: the sink retried UNKNOWN_TOPIC_OR_PARTITION forever. Against
// `sluice dev --auto-create-topics` it now runs as written.
func TestREADMEFirstPipelineRunsAgainstAFreshDevStack(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{AutoCreateTopics: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	brokers := stack.Brokers
	yaml := readmeFirstPipeline(t)
	if !strings.Contains(yaml, "localhost:9092") || !strings.Contains(yaml, "copy-{{.Topic}}") {
		t.Fatalf("the README's first pipeline changed; update this test:\n%s", yaml)
	}
	yaml = strings.ReplaceAll(yaml, "localhost:9092", brokers[0])
	// The input, as `sluice loadtest --topic orders --create-topic` makes it.
	createTopic(t, brokers, "orders", 3)
	const n = 500
	produceN(t, brokers, "orders", 0, n)
	b, stop := runPipeline(t, yaml)
	got := consumeAll(t, brokers, "copy-orders", n, 60*time.Second)
	if len(got) != n {
		t.Fatalf("copy-orders has %d distinct records, want %d (pipeline: %s %s)", len(got), n, b.Pipeline.Status().State, b.Pipeline.Status().Error)
	}
	if err := stop(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
}

// TestDemoPipelineFileRunsAgainstAFreshDevStack: the demo created its
// sinks' topics itself, so its pipeline file, run against a fresh `sluice
// dev`, retried UNKNOWN_TOPIC_OR_PARTITION on demo.events.copy forever.
// Against `sluice dev --auto-create-topics` the exactly-once Kafka
// pipeline runs as written (its transactional producers ask for the topic
// too).
func TestDemoPipelineFileRunsAgainstAFreshDevStack(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{AutoCreateTopics: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	brokers := stack.Brokers
	f, err := config.Parse([]byte(demo.PipelineFile(t.TempDir(), stack)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var p *config.Pipeline
	for i := range f.Pipelines {
		if f.Pipelines[i].Name == "events-to-kafka" {
			p = &f.Pipelines[i]
		}
	}
	if p == nil || p.Sink.Kafka == nil || p.Sink.Kafka.Topic != "{{.Topic}}.copy" {
		t.Fatalf("the demo's events-to-kafka pipeline changed; update this test: %+v", p)
	}
	// The events, as the demo's generator writes them.
	createTopic(t, brokers, "demo.events", 3)
	const n = 500
	produceN(t, brokers, "demo.events", 0, n)
	b, err := assembly.Build(context.Background(), *p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		b.Close(context.Background())
	})
	got := consumeAllWith(t, brokers, "demo.events.copy", n, 60*time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if len(got) != n {
		t.Fatalf("demo.events.copy has %d distinct committed records, want %d (%s %s)", len(got), n, b.Pipeline.Status().State, b.Pipeline.Status().Error)
	}
}

// TestRemovedStaticConsumerLeavesTheGroup: a static member does not leave
// the group when its client closes, so the partitions of a consumer
// removed at run time stood still until its session timed out.
func TestRemovedStaticConsumerLeavesTheGroup(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "leave.in", 4)
	createTopic(t, brokers, "leave.out", 4)
	// A session far longer than the test's patience: only a real leave
	// moves the partitions in time.
	b, stop := runPipeline(t, fmt.Sprintf(`
name: leave
source:
  kafka:
    brokers: [%[1]s]
    topics: [leave.in]
    group: leave
    consumers: 2
    properties: {group.instance.id: host-a, session.timeout.ms: 240000}
sink:
  kafka: {brokers: [%[1]s], topic: leave.out}
`, brokers[0]))
	p := b.Pipeline
	eventually(t, 60*time.Second, "both consumers owning partitions", func() bool {
		cs := p.Status().Consumers
		return len(cs) == 2 && len(cs[0].Assigned) > 0 && len(cs[1].Assigned) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.RemoveConsumer(ctx, "leave-2"); err != nil {
		t.Fatal(err)
	}
	adm := adminClient(t, brokers)
	eventually(t, 60*time.Second, "the group down to host-a-leave-1 owning every partition", func() bool {
		groups, err := adm.DescribeGroups(context.Background(), "leave")
		if err != nil {
			return false
		}
		g := groups["leave"]
		if g.State != "Stable" || len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "host-a-leave-1" {
			return false
		}
		ca, ok := g.Members[0].Assigned.AsConsumer()
		return ok && len(ca.Topics) == 1 && len(ca.Topics[0].Partitions) == 4
	})
	const n = 400
	produceN(t, brokers, "leave.in", 0, n)
	if got := consumeAll(t, brokers, "leave.out", n, 60*time.Second); len(got) != n {
		t.Fatalf("leave.out has %d distinct records, want %d", len(got), n)
	}
	if err := stop(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
}
