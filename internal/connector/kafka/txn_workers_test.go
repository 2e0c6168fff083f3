package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/kfakefault"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestExactlyOnceWorkersByKeyThroughProduceFaults: a 1-partition topic
// moved by 8 workers by key, exactly-once into a 4-partition topic, while
// the broker now and then refuses a whole produce request of a
// transaction some of whose records were already acked (other requests,
// other workers). The transaction is aborted as a whole and the batch
// written again, so read_committed readers see every record exactly once,
// each key's records in source order, and the group's offsets reach the
// end of the input. (A transaction ended before every worker's records
// were acked, or offsets committed per worker, lose or duplicate records
// here.)
func TestExactlyOnceWorkersByKeyThroughProduceFaults(t *testing.T) {
	const n, keys, workers, faults = 10000, 200, 8, 3
	const name = "wkfault"
	c, brokers := keyedInput(t, name, n, keys)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A produce request of a transaction that already had one stored is
	// refused with an error the producer does not retry, once in every 5
	// transactions, until faults were dealt.
	var inTxn, ended, dealt atomic.Int64
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		inTxn.Store(0)
		ended.Add(1)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.ProduceRequest)
		if req.TransactionID == nil || inTxn.Add(1) < 2 || dealt.Load() >= faults || ended.Load() < 5*(dealt.Load()+1) {
			return nil, nil, false
		}
		c.KeepControl()
		dealt.Add(1)
		return kfakefault.RefuseProduce(req, kerr.UnknownServerError.Code), nil, true
	})

	// Small produce batches: a transaction takes several produce
	// requests, so one can fail after another was stored.
	moveExactlyOnceByKey(t, ctx, brokers, name, n, 1<<10, pipeline.Options{Workers: workers,
		BatchRecords: 500, Linger: 20 * time.Millisecond, MaxInFlightRecords: 4000})
	if got := dealt.Load(); got != faults {
		t.Fatalf("%d produce requests refused, want %d: the fault did not happen", got, faults)
	}
	checkExactlyOnceInKeyOrder(t, ctx, brokers, name+".out", n)
	var aborted dto.Metric
	_ = metrics.KafkaTransactions.WithLabelValues(name, "aborted").Write(&aborted)
	if aborted.GetCounter().GetValue() == 0 {
		t.Fatal("no transaction was aborted after refused produces")
	}
	t.Logf("%d records, %d workers, %d produce requests refused, %v transactions aborted: every record once, keys in order",
		n, workers, faults, aborted.GetCounter().GetValue())
}

// keyedInput starts a broker with a 1-partition topic name.in holding n
// records, value i and key k<i mod keys>, and a 4-partition name.out.
func keyedInput(tb testing.TB, name string, n, keys int) (*kfake.Cluster, []string) {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, name+".in"), kfake.SeedTopics(4, name+".out"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		raw.Produce(ctx, &kgo.Record{Topic: name + ".in", Key: fmt.Appendf(nil, "k%d", i%keys), Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := raw.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	return c, brokers
}

// moveExactlyOnceByKey runs a pipeline with opts (by key; name, source
// and sink set here) from name.in exactly-once into name.out, produce
// batches of batchBytes, until the group name has committed all n
// records, and stops it.
func moveExactlyOnceByKey(tb testing.TB, ctx context.Context, brokers []string, name string, n, batchBytes int, opts pipeline.Options) {
	tb.Helper()
	conn := config.KafkaConn{Brokers: brokers}
	src, err := NewSource(config.KafkaSource{KafkaConn: conn, Topics: []string{name + ".in"}, Group: name}, SourceOptions{Pipeline: name, Transactional: true, Logger: opts.Logger})
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := NewSink(ctx, config.KafkaSink{KafkaConn: conn, Topic: name + ".out", Acks: "all", BatchBytes: batchBytes, TransactionTimeout: 10 * time.Second},
		SinkOptions{Pipeline: name, ExactlyOnce: true, Logger: opts.Logger})
	if err != nil {
		tb.Fatal(err)
	}
	defer sink.Close(context.Background())
	opts.Name, opts.Source, opts.Sink, opts.By = name, src, sink, pipeline.ByKey
	p, err := pipeline.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	defer adm.Close()
	for {
		offs, err := adm.FetchOffsets(ctx, name)
		if o, ok := offs.Lookup(name+".in", 0); err == nil && ok && o.At == int64(n) {
			break
		}
		if ctx.Err() != nil {
			tb.Fatalf("the group's offsets did not reach %d: %v", n, offs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

// checkExactlyOnceInKeyOrder reads topic with read_committed and fails
// unless it holds the values 0 to n-1 once each, every key's in
// increasing order (its source offsets).
func checkExactlyOnceInKeyOrder(t *testing.T, ctx context.Context, brokers []string, topic string, n int) {
	t.Helper()
	cl := readCommittedClient(t, brokers, topic)
	defer cl.Close()
	seen := make([]int, n)
	last := map[string]int{}
	total := 0
	// Until n records, a duplicate then showing as a record missing (the
	// test's deadline bounds it: under -race on a loaded machine a fetch
	// can take seconds to decode).
	for total < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			total++
			v, err := strconv.Atoi(string(r.Value))
			if err != nil || v < 0 || v >= n {
				t.Fatalf("unexpected value %q in %s", r.Value, topic)
			}
			seen[v]++
			if prev, ok := last[string(r.Key)]; ok && v <= prev {
				t.Fatalf("key %s: record %d after %d in %s: out of order", r.Key, v, prev, topic)
			}
			last[string(r.Key)] = v
		})
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %d is %d times in %s (read_committed), want once; %d records in all", v, c, topic, total)
		}
	}
	if total != n {
		t.Fatalf("%s holds %d committed records, want %d", topic, total, n)
	}
}
