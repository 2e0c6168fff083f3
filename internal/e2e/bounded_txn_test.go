package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnWrite writes n records to one partition of topic in one transaction of
// a new transactional producer (id), and commits or aborts it; with open,
// it leaves the transaction open and returns the producer, whose end is the
// caller's (the producer is closed at the end of the test).
func txnWrite(t *testing.T, brokers []string, id, topic string, partition int32, n int, commit, open bool) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		rec := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(fmt.Sprintf("%s-%d", id, i))}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if !open {
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}

// plainWrite writes n records without a transaction to one partition.
func plainWrite(t *testing.T, brokers []string, topic string, partition int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(fmt.Sprintf("plain-%d-%d", partition, i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A backfill (stop_at: end) of a topic written by transactional producers.
// The end of a partition is then a commit or abort marker, which no
// consumer receives, or (under read_committed) the last stable offset,
// held back by a transaction still open. The run must still stop by
// itself, move exactly what its isolation level shows of what was in the
// log at the start (read_committed: the committed records below the last
// stable offset, as kafka-console-consumer and Beam's bounded reads do),
// and commit past the markers, so that the next run moves only what was
// committed since.
//
// The partitions:
//
//	0: 10 plain, a committed transaction of 10, an aborted one of 5 last
//	1: only an aborted transaction of 7
//	2: a committed transaction of 10, 5 plain, a committed one of 5
//	3: a committed transaction of 6, then one of 4 left open at the start
//	   (still open at a repeated run, committed after it)
//	4: an aborted transaction of 3 behind which another producer's
//	   transaction of 2 was opened (the abort marker comes after the open
//	   transaction's first record, past the last stable offset), committed
//	   like partition 3's
func TestBoundedReadEndsOnTransactionMarkersAndOpenTransactions(t *testing.T) {
	committedOnly := [2]map[int32]int64{{0: 20, 1: 0, 2: 20, 3: 6, 4: 0}, {3: 4, 4: 2}}
	for _, tc := range []struct {
		name, isolation, delivery string
		// records moved per partition by the first and the second run
		moved [2]map[int32]int64
	}{
		{"read_committed", "read_committed", "at_least_once", committedOnly},
		// Exactly-once reads read_committed whatever isolation says, and
		// its offsets are committed by the sink's transactions.
		{"exactly_once", "read_uncommitted", "exactly_once", committedOnly},
		// read_uncommitted shows aborted records and those of open
		// transactions, as Kafka's own consumers do at that level.
		{"read_uncommitted", "read_uncommitted", "at_least_once",
			[2]map[int32]int64{{0: 25, 1: 7, 2: 20, 3: 10, 4: 5}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startBroker(t)
			brokers := c.ListenAddrs()
			createTopic(t, brokers, "bx.in", 5)
			createTopic(t, brokers, "bx.out", 5)
			plainWrite(t, brokers, "bx.in", 0, 10)
			txnWrite(t, brokers, "p0a", "bx.in", 0, 10, true, false)
			txnWrite(t, brokers, "p0b", "bx.in", 0, 5, false, false)
			txnWrite(t, brokers, "p1", "bx.in", 1, 7, false, false)
			txnWrite(t, brokers, "p2a", "bx.in", 2, 10, true, false)
			plainWrite(t, brokers, "bx.in", 2, 5)
			txnWrite(t, brokers, "p2b", "bx.in", 2, 5, true, false)
			txnWrite(t, brokers, "p3a", "bx.in", 3, 6, true, false)
			open3 := txnWrite(t, brokers, "p3b", "bx.in", 3, 4, false, true)
			aborted4 := txnWrite(t, brokers, "p4a", "bx.in", 4, 3, false, true)
			open4 := txnWrite(t, brokers, "p4b", "bx.in", 4, 2, false, true)
			if err := aborted4.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
				t.Fatal(err)
			}

			adm := adminClient(t, brokers)
			yaml := fmt.Sprintf(`
name: bx
delivery: %[3]s
source:
  kafka: {brokers: [%[1]s], topics: [bx.in], group: bx, consumers: 2, isolation: %[2]s, stop_at: end}
sink:
  kafka: {brokers: [%[1]s], topic: bx.out, partitioner: manual}
`, brokers[0], tc.isolation, tc.delivery)
			var total int64
			run := func(which string, want map[int32]int64) {
				t.Helper()
				start := time.Now()
				b, stop := runPipeline(t, yaml)
				defer func() { t.Logf("%s run took %.1f s", which, time.Since(start).Seconds()) }()
				eventually(t, 30*time.Second, which+" bounded run stopping by itself", func() bool {
					return b.Pipeline.Status().State == "stopped"
				})
				if err := stop(); err != nil {
					t.Fatalf("%s run: %v", which, err)
				}
				moved := map[int32]int64{}
				for _, p := range b.Pipeline.Status().EventTime {
					moved[p.Partition] += p.Written
				}
				for p := int32(0); p < 5; p++ {
					if moved[p] != want[p] {
						t.Errorf("%s run moved %d records of partition %d, want %d (all: %v)", which, moved[p], p, want[p], moved)
					}
					total += want[p]
				}
				if tc.delivery != "exactly_once" { // there the end offsets count markers too
					if got := sum(endOffsets(t, adm, "bx.out")); got != total {
						t.Fatalf("after the %s run bx.out holds %d records, want %d", which, got, total)
					}
				}
			}

			run("first", tc.moved[0])
			// Run again while the transactions are still open (they may
			// never end): nothing new is present, nothing is moved.
			run("repeated", nil)
			// The open transactions end; what they wrote is the next
			// run's under read_committed.
			ctx := context.Background()
			for _, cl := range []*kgo.Client{open3, open4} {
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					t.Fatal(err)
				}
			}
			run("second", tc.moved[1])
			// Everything is at its end now: the group committed past
			// every marker (exactly-once commits after the last record
			// of its transactions), and a third run moves nothing.
			if tc.delivery != "exactly_once" {
				waitCommittedToEnd(t, adm, "bx", "bx.in", 10*time.Second)
			}
			run("third", nil)
		})
	}
}
