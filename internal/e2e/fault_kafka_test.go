package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/faultproxy"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// proxiedBroker is a one-broker kfake cluster that advertises a fault
// proxy's address: every client that follows the metadata (the pipeline)
// reaches the broker through the proxy. The test's own clients use
// direct, which dials the broker itself, so they can produce and check
// while the pipeline's connections fail.
type proxiedBroker struct {
	proxy   *faultproxy.Proxy
	brokers []string // the advertised (proxied) address
	direct  kgo.Opt
}

func startProxiedBroker(t *testing.T) *proxiedBroker {
	t.Helper()
	pb := &proxiedBroker{}
	var real string
	c := startBroker(t, kfake.ListenFn(func(network, address string) (net.Listener, error) {
		ln, p, err := faultproxy.ListenBehind(network, address)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = p.Close() })
		pb.proxy, real = p, p.Target()
		return ln, nil
	}))
	pb.brokers = c.ListenAddrs()
	proxied := pb.proxy.Addr()
	pb.direct = kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		if host == proxied {
			host = real
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	})
	return pb
}

// produceDirect produces records from..from+n-1 as produceN does,
// bypassing the proxy.
func (pb *proxiedBroker) produceDirect(t *testing.T, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(pb.brokers...), pb.direct, kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// TestKafkaBrokerUnreachableLosesNothing: the broker stops answering the
// pipeline (a network partition: connections stay up, nothing comes back)
// for a few seconds (30 s with SLUICE_LONG=1) while records keep arriving,
// then answers again. The pipeline recovers by itself; every record
// reaches the sink, and the group's offsets reach the end of the topic.
// The Kafka sink's connections go through the same partition.
func TestKafkaBrokerUnreachableLosesNothing(t *testing.T) {
	for _, sink := range []string{"file", "kafka"} {
		t.Run(sink, func(t *testing.T) { brokerOutage(t, sink, false) })
	}
}

// TestKafkaBrokerDownLosesNothing: as TestKafkaBrokerUnreachableLosesNothing,
// but the broker is down: every connection is reset and new ones are
// refused until it comes back.
func TestKafkaBrokerDownLosesNothing(t *testing.T) {
	for _, sink := range []string{"file", "kafka"} {
		t.Run(sink, func(t *testing.T) { brokerOutage(t, sink, true) })
	}
}

// brokerOutage runs a Kafka source into sink ("file" or "kafka") through
// a broker outage: a black hole, or the broker down.
func brokerOutage(t *testing.T, sink string, down bool) {
	outage := 5 * time.Second
	if longRun() {
		outage = 30 * time.Second
	}
	const n = 10000
	pb := startProxiedBroker(t)
	createTopic(t, pb.brokers, "in", 3)
	createTopic(t, pb.brokers, "out", 3)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	sinkYAML := fmt.Sprintf("file: {path: %s}", out)
	if sink == "kafka" {
		sinkYAML = fmt.Sprintf("kafka: {brokers: [%s], topic: out}", pb.brokers[0])
	}
	b, stop := runPipeline(t, fmt.Sprintf(`
name: outage-%s
source:
  kafka: {brokers: [%s], topics: [in], group: outage-%s, consumers: 2}
format: {value: json}
batch: {max_records: 500}
sink:
  %s
`, sink, pb.brokers[0], sink, sinkYAML))

	pb.produceDirect(t, "in", 0, n/2)
	eventually(t, 30*time.Second, "records flowing", func() bool { return b.Pipeline.Status().RecordsOut > 0 })
	what := "unreachable"
	if down {
		what = "down"
		if err := pb.proxy.Refuse(); err != nil {
			t.Fatal(err)
		}
		pb.proxy.ResetAll()
	} else if err := pb.proxy.BlackHole(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	pb.produceDirect(t, "in", n/2, n/2)     // the input goes on
	time.Sleep(outage - time.Since(downAt)) // the outage itself, not a synchronisation
	during := b.Pipeline.Status().RecordsOut
	if err := pb.proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	if during > n/2 {
		t.Fatalf("%d records out by the end of the outage, but only %d were produced before it: the outage did not hit the pipeline", during, n/2)
	}

	adm := adminClientWith(t, pb.brokers, pb.direct)
	waitCommittedToEnd(t, adm, "outage-"+sink, "in", 45*time.Second)
	st := b.Pipeline.Status()
	if err := stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	seen := map[string]int{}
	if sink == "kafka" {
		seen = consumeAllWith(t, pb.brokers, "out", int(st.RecordsOut), 30*time.Second, pb.direct)
	} else {
		for _, l := range readLines(t, out) {
			v, _ := l["value"].(map[string]any)
			seen[fmt.Sprint(v["id"])]++
		}
	}
	total := 0
	for _, c := range seen {
		total += c
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records at the %s sink, want %d (records lost)", len(seen), sink, n)
	}
	t.Logf("%s sink, broker %s for %v: %d records in, %d out (%d distinct, %d duplicates), %d out during the outage, %d retries, %d errors",
		sink, what, outage, n, total, len(seen), total-n, during, st.Retries, st.Errors)
}

// TestKafkaSinkProduceAnswerLostNoDuplicates: the broker appends a batch
// of the Kafka sink, but the answer is lost and the connection reset,
// three times. The sink's producer sends the batch again; its producer is
// idempotent (acks: all), so the broker recognises the retry and the
// output holds every record once even in at_least_once.
func TestKafkaSinkProduceAnswerLostNoDuplicates(t *testing.T) {
	const n, faults = 6000, 3
	pb := startProxiedBroker(t)
	createTopic(t, pb.brokers, "in", 3)
	createTopic(t, pb.brokers, "out", 3)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: lost-acks
source:
  kafka: {brokers: [%s], topics: [in], group: lost-acks}
format: {value: json}
batch: {max_records: 500}
sink:
  kafka: {brokers: [%s], topic: out, acks: all}
`, pb.brokers[0], pb.brokers[0]))
	for i := 0; i < faults; i++ {
		pb.proxy.DropAnswersAfter(faultproxy.KafkaRequest(kmsg.Produce.Int16()), 0, 0)
		pb.produceDirect(t, "in", i*n/faults, n/faults)
		eventually(t, 30*time.Second, fmt.Sprintf("the answer to produce %d dropped", i+1), func() bool {
			st := pb.proxy.Stats()
			return st.Drops == int64(i+1) && st.DroppedBytes > 0
		})
		pb.proxy.ResetAll() // rather than wait for the request timeout
	}
	adm := adminClientWith(t, pb.brokers, pb.direct)
	waitCommittedToEnd(t, adm, "lost-acks", "in", 45*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	seen := consumeAllAndExtras(t, pb.brokers, "out", n, 30*time.Second, pb.direct)
	total := 0
	for _, c := range seen {
		total += c
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records in the output, want %d (records lost)", len(seen), n)
	}
	if total != n {
		t.Fatalf("%d records in the output for %d distinct: the retried produces were appended twice", total, n)
	}
	t.Logf("%d produce answers lost: %d records in, %d out, 0 duplicated, %d pipeline retries", faults, n, total, b.Pipeline.Status().Retries)
}
