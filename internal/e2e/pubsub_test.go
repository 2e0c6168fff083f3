package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/sluice-dev/sluice/internal/kfakefault"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	pubsubconn "github.com/sluice-dev/sluice/internal/connector/pubsub"
)

// startPubSub runs Google's Pub/Sub emulator with topic and an ordered
// subscription to it, and returns its address and a client.
func startPubSub(t *testing.T, topic, sub string) (*pstest.Server, *pubsub.Client) {
	t.Helper()
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	t.Cleanup(func() { srv.Close() })
	opts, err := pubsubconn.ClientOptions(srv.Addr, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "demo", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/demo/topics/" + topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/demo/subscriptions/" + sub, Topic: "projects/demo/topics/" + topic, EnableMessageOrdering: true, AckDeadlineSeconds: 10,
	}); err != nil {
		t.Fatal(err)
	}
	return srv, client
}

// published is what the test sent: data, attributes, ordering key.
type published struct {
	data  []byte
	attrs map[string]string
	key   string
}

func publishAll(t *testing.T, client *pubsub.Client, topic string, n int) []published {
	t.Helper()
	p := client.Publisher(topic)
	p.EnableMessageOrdering = true
	defer p.Stop()
	var out []published
	var results []*pubsub.PublishResult
	for i := 0; i < n; i++ {
		m := published{data: []byte(fmt.Sprintf("message %d \x00\xff", i)), attrs: map[string]string{"seq": fmt.Sprint(i), "source": "test"}}
		if i%5 != 0 {
			m.key = fmt.Sprintf("device-%d", i%40)
		}
		if i%7 == 0 {
			m.attrs = nil // data only
		}
		out = append(out, m)
		results = append(results, p.Publish(context.Background(), &pubsub.Message{Data: m.data, Attributes: m.attrs, OrderingKey: m.key}))
	}
	for _, r := range results {
		if _, err := r.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitAllAcked waits until the emulator has seen every message acked.
func waitAllAcked(t *testing.T, srv *pstest.Server, d time.Duration) {
	t.Helper()
	eventually(t, d, "every message acked", func() bool {
		for _, m := range srv.Messages() {
			if m.Acks == 0 {
				return false
			}
		}
		return true
	})
}

func pubsubPipeline(name, addr, sub string, brokers []string) string {
	return fmt.Sprintf(`
name: %s
source:
  pubsub: {project: demo, subscription: %s, emulator_host: %s, streams: 10, max_ack_extension: 10s}
sink:
  kafka: {brokers: [%s], topic: "{{.Topic}}"}
`, name, sub, addr, brokers[0])
}

// Pub/Sub -> Kafka: data byte for byte, attributes as headers, the
// ordering key as the Kafka key (so one key stays in one partition, in
// publish order), and every message acked.
func TestPubSubToKafkaPassesMessagesThrough(t *testing.T) {
	srv, client := startPubSub(t, "alerts", "alerts-sluice")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "alerts", 3)
	sent := publishAll(t, client, "alerts", 400)
	_, stop := runPipeline(t, pubsubPipeline("ps-to-kafka", srv.Addr, "alerts-sluice", brokers))
	got := sqlConsumeRecords(t, brokers, "alerts", len(sent), 60*time.Second)
	waitAllAcked(t, srv, 20*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	bySeq := map[string]*kgo.Record{}
	lastSeq := map[string]int{} // ordering key -> last seq seen, in Kafka order per partition
	for _, r := range got {
		var seq string
		attrs := map[string]string{}
		for _, h := range r.Headers {
			attrs[h.Key] = string(h.Value)
		}
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "message %d", &i); err != nil {
			t.Fatalf("unexpected value %q", r.Value)
		}
		seq = fmt.Sprint(i)
		if bySeq[seq] != nil {
			continue // a redelivery: at least once
		}
		bySeq[seq] = r
		want := sent[i]
		if !bytes.Equal(r.Value, want.data) {
			t.Errorf("message %d: value %q, want %q", i, r.Value, want.data)
		}
		if !maps.Equal(attrs, want.attrs) && !(len(attrs) == 0 && want.attrs == nil) {
			t.Errorf("message %d: headers %v, want the attributes %v", i, attrs, want.attrs)
		}
		if string(r.Key) != want.key || (want.key == "" && r.Key != nil) {
			t.Errorf("message %d: key %q, want the ordering key %q", i, r.Key, want.key)
		}
		if want.key != "" {
			if prev, ok := lastSeq[want.key]; ok && prev > i {
				t.Errorf("ordering key %s: message %d after %d in Kafka", want.key, i, prev)
			}
			lastSeq[want.key] = i
		}
	}
	if len(bySeq) != len(sent) {
		t.Fatalf("%d distinct messages in Kafka, want %d", len(bySeq), len(sent))
	}
}

// failProduce makes the broker answer every produce with a retriable error
// while fail is set.
func failProduce(c *kfake.Cluster, fail *atomic.Bool) {
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		if !fail.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		return kfakefault.RefuseProduce(req, kerr.NotEnoughReplicas.Code), nil, true
	})
}

// refusingKafka is a Pub/Sub -> Kafka pipeline running while the broker
// refuses every produce (until fail is cleared).
type refusingKafka struct {
	srv     *pstest.Server
	brokers []string
	sent    []published
	stop    func() error
	fail    *atomic.Bool
}

// startRefusingKafka publishes n messages to topic and runs the pipeline
// from its subscription (topic-sluice) into the Kafka topic of the same
// name until at least delivered messages reached Sluice.
func startRefusingKafka(t *testing.T, topic string, n, delivered int) refusingKafka {
	t.Helper()
	srv, client := startPubSub(t, topic, topic+"-sluice")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, topic, 3)
	fail := &atomic.Bool{}
	fail.Store(true)
	failProduce(c, fail)
	sent := publishAll(t, client, topic, n)
	_, stop := runPipeline(t, pubsubPipeline("ps-"+topic, srv.Addr, topic+"-sluice", brokers))
	eventually(t, 30*time.Second, "messages delivered to Sluice", func() bool {
		got := 0
		for _, m := range srv.Messages() {
			got += min(m.Deliveries, 1)
		}
		return got >= delivered
	})
	return refusingKafka{srv: srv, brokers: brokers, sent: sent, stop: stop, fail: fail}
}

// A message is acked to Pub/Sub only once Kafka has acknowledged it: while
// the broker refuses every produce, nothing is acked; once it accepts,
// everything arrives and is acked.
func TestPubSubAcksOnlyAfterKafkaAcknowledged(t *testing.T) {
	x := startRefusingKafka(t, "orders", 100, 20)
	srv, brokers, sent, stop, fail := x.srv, x.brokers, x.sent, x.stop, x.fail
	time.Sleep(2 * time.Second) // produce attempts keep failing meanwhile
	for _, m := range srv.Messages() {
		if m.Acks > 0 {
			t.Fatalf("message %s acked while Kafka refused every produce", m.ID)
		}
	}
	fail.Store(false)
	sqlConsumeRecords(t, brokers, "orders", len(sent), 60*time.Second)
	waitAllAcked(t, srv, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Messages a stopped pipeline had not acked are nacked, and the next run
// delivers them: nothing is lost across a restart.
func TestPubSubUnackedMessagesAreRedeliveredAfterARestart(t *testing.T) {
	x := startRefusingKafka(t, "events", 60, 1)
	srv, brokers, sent, stop, fail := x.srv, x.brokers, x.sent, x.stop, x.fail
	// The first run cannot write anything; stopping it must not take the
	// messages with it. (Its drain gives up after shutdown_timeout.)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- stop() }()
	time.Sleep(500 * time.Millisecond)
	fail.Store(false)
	<-done
	t.Logf("first run stopped in %v", time.Since(start))
	_, stop2 := runPipeline(t, pubsubPipeline("ps-events", srv.Addr, "events-sluice", brokers))
	// Some messages may arrive twice (at least once): wait for every one.
	var missing []string
	eventually(t, 60*time.Second, "every message in Kafka", func() bool {
		seen := consumeAll(t, brokers, "events", 1<<30, 2*time.Second) // all there is
		missing = missing[:0]
		for _, m := range sent {
			if seen[string(m.data)] == 0 {
				missing = append(missing, string(m.data))
			}
		}
		return len(missing) == 0
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

// Kafka -> Pub/Sub: the value is the message data byte for byte, headers
// are attributes, the key is the ordering key (one key's messages in
// offset order), and a record Pub/Sub cannot take (a header that is not
// UTF-8) is dead-lettered instead of blocking the rest.
func TestKafkaToPubSub(t *testing.T) {
	srv, _ := startPubSub(t, "readings", "readings-check")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "readings", 3)
	const n = 300
	produceAll(t, brokers, nil, 0, n, func(i int) *kgo.Record {
		r := &kgo.Record{Topic: "readings", Value: []byte(fmt.Sprintf("reading %d \x00\xff", i)),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(fmt.Sprint(i))}, {Key: "unit", Value: []byte("C")}}}
		if i%4 != 0 {
			r.Key = []byte(fmt.Sprintf("sensor-%d", i%25))
		}
		if i == 77 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "raw", Value: []byte{0xff, 0xfe}})
		}
		return r
	})
	_, stop := runPipeline(t, fmt.Sprintf(`
name: kafka-to-pubsub
source:
  kafka: {brokers: [%s], topics: [readings], group: to-pubsub}
on_error: dlq
sink:
  pubsub: {project: demo, topic: "{{.Topic}}", emulator_host: %s}
`, brokers[0], srv.Addr))
	eventually(t, 60*time.Second, "299 messages in Pub/Sub", func() bool { return len(srv.Messages()) >= n-1 })
	dead := sqlConsumeRecords(t, brokers, "readings.dlq", 1, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if string(dead[0].Value) != "reading 77 \x00\xff" || !strings.Contains(sqlHeader(dead[0], "sluice.dlq.error"), "not UTF-8") {
		t.Fatalf("dead letter %q: %s", dead[0].Value, sqlHeader(dead[0], "sluice.dlq.error"))
	}
	last := map[string]int{}
	seen := map[int]bool{}
	for _, m := range srv.Messages() {
		var i int
		if _, err := fmt.Sscanf(string(m.Data), "reading %d", &i); err != nil || string(m.Data) != fmt.Sprintf("reading %d \x00\xff", i) {
			t.Fatalf("message data %q", m.Data)
		}
		seen[i] = true
		if m.Attributes["seq"] != fmt.Sprint(i) || m.Attributes["unit"] != "C" || len(m.Attributes) != 2 {
			t.Errorf("message %d: attributes %v", i, m.Attributes)
		}
		wantKey := ""
		if i%4 != 0 {
			wantKey = fmt.Sprintf("sensor-%d", i%25)
		}
		if m.OrderingKey != wantKey {
			t.Errorf("message %d: ordering key %q, want %q", i, m.OrderingKey, wantKey)
		}
		if wantKey != "" {
			if prev, ok := last[wantKey]; ok && prev > i {
				t.Errorf("ordering key %s: %d published after %d", wantKey, i, prev)
			}
			last[wantKey] = i
		}
	}
	if len(seen) != n-1 || seen[77] {
		t.Fatalf("%d distinct messages (77 present: %v), want %d without 77", len(seen), seen[77], n-1)
	}
}

// Sources and sinks compose: Pub/Sub JSON messages into a PostgreSQL
// staging table merged by statements, with the message's publish time and
// arrival sequence as metadata columns.
func TestPubSubToPostgresWithMerge(t *testing.T) {
	srv, client := startPubSub(t, "orders-ps", "orders-ps-sluice")
	d := openSQL(t, "postgres")
	pipe, stg, fin := sqlName("psorders"), sqlName("ps_stg"), sqlName("ps_orders")
	d.cleanupSQL(t, pipe, stg, fin)
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint, amount numeric(10,2), _timestamp timestamptz, _topic text, _sluice_batch bigint NOT NULL DEFAULT 0)`, stg))
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, amount numeric(10,2))`, fin))
	p := client.Publisher("orders-ps")
	var results []*pubsub.PublishResult
	for i := 0; i < 200; i++ {
		results = append(results, p.Publish(context.Background(), &pubsub.Message{Data: []byte(fmt.Sprintf(`{"id":%d,"amount":%d.25}`, i%150, i))}))
	}
	for _, r := range results {
		if _, err := r.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p.Stop()
	_, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  pubsub: {project: demo, subscription: orders-ps-sluice, emulator_host: %s, streams: 10}
format: {value: json}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge:
      idle: 500ms
      statements:
        - INSERT INTO %s (id, amount) SELECT DISTINCT ON (id) id, amount FROM %s WHERE _sluice_batch <= {{.HighWaterMark}} ORDER BY id, amount DESC ON CONFLICT (id) DO UPDATE SET amount = excluded.amount
        - DELETE FROM %s WHERE _sluice_batch <= {{.HighWaterMark}}
`, pipe, srv.Addr, d.dsn, stg, fin, stg, stg))
	eventually(t, 60*time.Second, "150 merged orders and an empty staging table", func() bool {
		return d.count(t, "SELECT count(*) FROM "+fin) == 150 && d.count(t, "SELECT count(*) FROM "+stg) == 0
	})
	waitAllAcked(t, srv, 20*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Ids 0-49 were published twice; the merge keeps the larger amount.
	if n := d.count(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE amount = (CASE WHEN id < 50 THEN id + 150 ELSE id END) + 0.25", fin)); n != 150 {
		t.Fatalf("%d orders with the expected amount, want 150", n)
	}
}

// Pub/Sub -> Kafka with the process SIGKILLed mid-stream (twice; five
// times with SLUICE_LONG=1):
// nothing is lost. Messages whose acks died with a process come back at
// their ack deadline (duplicates in Kafka are allowed: at least once).
func TestPubSubToKafkaUnderKills(t *testing.T) {
	n, kills := 1500, 2
	if longRun() {
		n, kills = 5000, 5
	}
	srv, client := startPubSub(t, "kills", "kills-sluice")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "kills", 3)
	sent := publishAll(t, client, "kills", n)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSQLCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SLUICE_SQL_CRASH_PIPELINE="+pubsubPipeline("ps-kills", srv.Addr, "kills-sluice", brokers))
		// The child's test log (its pipeline's log lines, and why it
		// failed if it did) goes to its stdout.
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// Everything the topic holds, read to its end offsets: a fixed short
	// read (under -race, on a loaded machine) can stop before the end
	// and miss what is there.
	adm := adminClient(t, brokers)
	inTopic := func() map[string]int {
		var total int64
		for _, end := range endOffsets(t, adm, "kills") {
			total += end
		}
		return consumeAll(t, brokers, "kills", int(total), 60*time.Second)
	}
	inKafka := func() int { return len(inTopic()) }
	for k := 0; k < kills; k++ {
		cmd := start()
		// Kill at a moment when messages are being moved: a second or two
		// in (acks of whatever was in flight die with the process).
		time.Sleep(time.Duration(1000+rand.IntN(1000)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d distinct messages in Kafka", k+1, inKafka())
	}
	cmd := start()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}()
	var missing int
	// A dead subscriber's messages come back when the ack deadline it
	// last extended runs out: at most max_ack_extension (10s here).
	eventually(t, 180*time.Second, "every message in Kafka", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the last sluice process exited (%v) with %d messages missing", err, missing)
		default:
		}
		seen := inTopic()
		missing = 0
		for _, m := range sent {
			if seen[string(m.data)] == 0 {
				missing++
			}
		}
		return missing == 0
	})
}
