package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
)

func parsePipeline(t *testing.T, yaml string) config.Pipeline {
	t.Helper()
	f, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return f.Pipelines[0]
}

func TestKafkaToKafka200kThreeConsumers(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "in", 6)
	createTopic(t, brokers, "out", 6)
	const n = 200000
	produceN(t, brokers, "in", 0, n)

	p := parsePipeline(t, fmt.Sprintf(`
name: copy
source:
  kafka: {brokers: [%s], topics: [in], group: copy, consumers: 3, properties: {auto.commit.interval.ms: 200}}
sink:
  kafka: {brokers: [%s], topic: out}
`, brokers[0], brokers[0]))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()

	eventually(t, 90*time.Second, "all records written", func() bool { return b.Pipeline.Status().RecordsOut >= n })
	adm := adminClient(t, brokers)
	ends := endOffsets(t, adm, "in")
	eventually(t, 30*time.Second, "committed offsets to reach the end offsets", func() bool {
		got := committed(t, adm, "copy", "in")
		for p, end := range ends {
			if got[p] != end {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := consumeAll(t, brokers, "out", n, 60*time.Second)
	if len(seen) != n {
		t.Fatalf("distinct records at the sink = %d, want %d", len(seen), n)
	}
	for i := 0; i < n; i += 9973 {
		v := fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)
		if seen[v] != 1 {
			t.Fatalf("record %d seen %d times, want 1", i, seen[v])
		}
	}
	st := b.Pipeline.Status()
	if st.RecordsIn != n || st.RecordsOut != n {
		t.Fatalf("status in=%d out=%d, want %d", st.RecordsIn, st.RecordsOut, n)
	}
}
