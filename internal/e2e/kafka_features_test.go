package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// runToCount runs a pipeline from yaml until it has written want records.
func runToCount(t *testing.T, yaml string, want int64) {
	t.Helper()
	b, stop := runPipeline(t, yaml)
	eventually(t, 60*time.Second, fmt.Sprintf("%d records written", want), func() bool { return b.Pipeline.Status().RecordsOut >= want })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.Pipeline.Status().RecordsOut; got != want {
		t.Fatalf("wrote %d records, want exactly %d", got, want)
	}
}

func TestSASLSCRAMSourceAndSink(t *testing.T) {
	c := startBroker(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "sluice", "s3cret"))
	brokers := c.ListenAddrs()
	auth := scram.Auth{User: "sluice", Pass: "s3cret"}.AsSha256Mechanism()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.SASL(auth))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := adminClientWith(t, brokers, kgo.SASL(auth))
	for _, topic := range []string{"secure.in", "secure.out"} {
		if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for i := 0; i < 500; i++ {
		recs = append(recs, &kgo.Record{Topic: "secure.in", Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runToCount(t, fmt.Sprintf(`
name: secure
source:
  kafka: {brokers: [%[1]s], topics: [secure.in], group: secure, sasl: {mechanism: SCRAM-SHA-256, username: sluice, password: s3cret}}
sink:
  kafka: {brokers: [%[1]s], topic: secure.out, sasl: {mechanism: SCRAM-SHA-256, username: sluice, password: s3cret}}
`, brokers[0]), 500)

	// And a wrong password is a clear error, not a hang.
	p := parsePipeline(t, fmt.Sprintf(`
name: wrong
source:
  kafka: {brokers: [%[1]s], topics: [secure.in], group: wrong, sasl: {mechanism: SCRAM-SHA-256, username: sluice, password: nope}}
sink:
  file: {path: %[2]s}
`, brokers[0], filepath.Join(t.TempDir(), "x.jsonl")))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := b.Pipeline.Run(ctx); err == nil {
		t.Fatal("a pipeline with a wrong SASL password ran without error")
	}
}

func TestTopicRegexReadsEveryMatchingTopic(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	for _, topic := range []string{"orders.eu", "orders.us", "payments", "regex.out"} {
		createTopic(t, brokers, topic, 2)
	}
	produceN(t, brokers, "orders.eu", 0, 300)
	produceN(t, brokers, "orders.us", 300, 200)
	produceN(t, brokers, "payments", 500, 100)
	runToCount(t, fmt.Sprintf(`
name: regex
source: {kafka: {brokers: [%[1]s], topic_regex: "^orders\\..*", group: regex}}
sink: {kafka: {brokers: [%[1]s], topic: regex.out}}
`, brokers[0]), 500)
}

func TestReadCommittedSkipsAbortedTransactions(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "txn.in", 1)
	createTopic(t, brokers, "txn.out", 1)
	for i, commit := range []bool{true, false, true} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(fmt.Sprintf("t%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 100; j++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "txn.in", Value: []byte(fmt.Sprintf("%d-%d", i, j))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	runToCount(t, fmt.Sprintf(`
name: txn
source: {kafka: {brokers: [%[1]s], topics: [txn.in], group: txn, isolation: read_committed}}
sink: {kafka: {brokers: [%[1]s], topic: txn.out}}
`, brokers[0]), 200)
	seen := consumeAll(t, brokers, "txn.out", 200, 20*time.Second)
	for v := range seen {
		if v[0] == '1' {
			t.Fatalf("record %s of the aborted transaction was copied", v)
		}
	}
}

func TestKeysHeadersAndPartitionsPassThrough(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "pt.in", 4)
	createTopic(t, brokers, "pt.out", 4)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	ts := time.UnixMilli(1700000000000)
	var recs []*kgo.Record
	for i := 0; i < 40; i++ {
		recs = append(recs, &kgo.Record{Topic: "pt.in", Partition: int32(i % 4), Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprint(i)), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprint(i))}}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runToCount(t, fmt.Sprintf(`
name: pt
source: {kafka: {brokers: [%[1]s], topics: [pt.in], group: pt}}
sink: {kafka: {brokers: [%[1]s], topic: pt.out, partitioner: manual, compression: zstd}}
`, brokers[0]), 40)
	out, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("pt.out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer out.Close()
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for got < 40 && ctx.Err() == nil {
		out.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got++
			var i int
			fmt.Sscan(string(r.Value), &i)
			if string(r.Key) != fmt.Sprintf("key-%d", i) || r.Partition != int32(i%4) || len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(i) || !r.Timestamp.Equal(ts) {
				t.Errorf("record %d arrived as key %q partition %d headers %v timestamp %v", i, r.Key, r.Partition, r.Headers, r.Timestamp)
			}
		})
	}
	if got != 40 {
		t.Fatalf("read back %d records, want 40", got)
	}
}
