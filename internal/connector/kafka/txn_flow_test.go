package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func committedTxns() float64 {
	var m dto.Metric
	_ = metrics.KafkaTransactions.WithLabelValues("txtest", "committed").Write(&m)
	return m.GetCounter().GetValue()
}

// openExactlyOnce opens a reader of a transactional source on in (group
// and pipeline name) and an exactly-once sink to out.
func openExactlyOnce(t *testing.T, ctx context.Context, brokers []string, in, out, name string) (connector.Reader, *Sink) {
	t.Helper()
	conn := config.KafkaConn{Brokers: brokers}
	src, err := NewSource(config.KafkaSource{KafkaConn: conn, Topics: []string{in}, Group: name}, SourceOptions{Pipeline: name, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(ctx, config.KafkaSink{KafkaConn: conn, Topic: out, Acks: "all", BatchBytes: 1 << 20, TransactionTimeout: 10 * time.Second},
		SinkOptions{Pipeline: name, ExactlyOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := src.OpenReader(ctx, name+"-1")
	if err != nil {
		sink.Close(ctx)
		t.Fatal(err)
	}
	return rd, sink
}

// readCommittedClient consumes topic from its start with read_committed.
func readCommittedClient(t *testing.T, brokers []string, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// readCommitted reads topic with read_committed until it holds want
// records (30 s at most: a loaded machine may be slow to fetch them), then
// for one more second to catch records beyond want, and counts each value.
// Records beyond want (duplicates) are already in the log when it is
// called, so they arrive in the fetches right after the last one wanted.
func readCommitted(t *testing.T, ctx context.Context, brokers []string, topic string, want int) map[string]int {
	t.Helper()
	cl := readCommittedClient(t, brokers, topic)
	defer cl.Close()
	seen := map[string]int{}
	total := 0
	// read polls until ctx ends or enough returns true.
	read := func(ctx context.Context, enough func() bool) {
		for !enough() {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
		}
	}
	readCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	read(readCtx, func() bool { return total >= want })
	extraCtx, stopExtra := context.WithTimeout(ctx, time.Second)
	defer stopExtra()
	read(extraCtx, func() bool { return false })
	return seen
}

// The exactly-once path in one process (and under the race detector, which
// the end-to-end tests' sluice binary is not built with): a reader of a
// transactional source and the sink's transactions move every record once,
// commit the group's offsets inside them, and drop what a revoked
// partition still had in flight.
func TestExactlyOnceReadWriteAckInOneProcess(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "tx.in", "tx.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 2000
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Topic: "tx.in", Partition: int32(i % 2), Key: []byte(fmt.Sprint(i % 2)), Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	rd, sink := openExactlyOnce(t, ctx, brokers, "tx.in", "tx.out", "txtest")
	defer sink.Close(ctx)
	committedBefore := committedTxns()
	for moved := 0; moved < n; {
		recs, err := rd.Read(ctx, 300)
		if err != nil && len(recs) == 0 {
			t.Fatalf("read after %d records: %v", moved, err)
		}
		if err := sink.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		rd.Ack(recs)
		moved += len(recs)
	}
	if got := committedTxns() - committedBefore; got < 1 {
		t.Fatalf("%v transactions counted as committed", got)
	}

	// Offsets were committed in the transactions, not by the reader.
	adm := kadm.NewClient(prod)
	offs, err := adm.FetchOffsets(ctx, "txtest")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("group txtest committed %d in all, want %d", sum, n)
	}

	// Records of a partition revoked before their batch is written are
	// dropped, not written: the next owner reads them again.
	late := []*connector.Record{{Topic: "tx.in", Partition: 0, Offset: n, Value: []byte("late"), Origin: rd.(*reader).parts[topicPartition{"tx.in", 0}].add(n, n, 1)}}
	rd.(*reader).retire(map[string][]int32{"tx.in": {0}})
	err = sink.Write(ctx, late)
	var be *connector.BatchError
	if !errors.As(err, &be) || len(be.Released) != 1 || be.Released[0] != late[0] || len(be.NotWritten)+len(be.Failed) != 0 {
		t.Fatalf("writing a revoked partition's record: %v; want it reported released (not written, not failed)", err)
	}
	if err := rd.Close(ctx); err != nil {
		t.Fatal(err)
	}

	seen := readCommitted(t, ctx, brokers, "tx.out", n)
	total := 0
	for _, c := range seen {
		total += c
	}
	if total != n || len(seen) != n || seen["late"] != 0 {
		t.Fatalf("tx.out holds %d records, %d distinct, late %d; want %d once each and no late", total, len(seen), seen["late"], n)
	}
}

// A commit the broker carries out but whose answer never reaches the
// client: the sink must see from the group's offsets that the batch is
// committed, not write it again.
func TestExactlyOnceCommitWhoseAnswerIsLost(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lost.in", "lost.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i := 0; i < 100; i++ {
		raw.Produce(ctx, &kgo.Record{Topic: "lost.in", Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := raw.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The first commit is passed on to the broker by another client, then
	// the sink's connection is cut before it hears the answer. (The
	// client library recovers from this fault by itself: the write returns
	// success at once. The sink's fallback for a commit reported failed,
	// reading the group's stable offsets, is not reached by it.)
	var cut atomic.Int32
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		end := req.(*kmsg.EndTxnRequest)
		if !end.Commit || !cut.CompareAndSwap(0, 1) {
			return nil, nil, false
		}
		var ferr error
		c.SleepControl(func() {
			fwd := *end
			var resp *kmsg.EndTxnResponse
			if resp, ferr = fwd.RequestWith(context.Background(), raw); ferr == nil {
				ferr = kerr.ErrorForCode(resp.ErrorCode)
			}
		})
		if ferr != nil {
			t.Errorf("forwarding the commit: %v", ferr)
		}
		cut.Store(2)
		return nil, errors.New("answer lost"), true
	})

	rd, sink := openExactlyOnce(t, ctx, brokers, "lost.in", "lost.out", "lost")
	defer sink.Close(ctx)
	defer rd.Close(ctx)
	var recs []*connector.Record
	for len(recs) < 100 {
		more, err := rd.Read(ctx, 100-len(recs))
		if err != nil && len(more) == 0 {
			t.Fatal(err)
		}
		recs = append(recs, more...)
	}
	// The engine retries a failed write; the outcome must be one copy.
	for attempt := 0; ; attempt++ {
		err := sink.Write(ctx, recs)
		if err == nil {
			break
		}
		t.Logf("write attempt %d: %v", attempt+1, err)
		if attempt == 5 {
			t.Fatalf("write: %v", err)
		}
	}
	rd.Ack(recs)
	if cut.Load() < 2 {
		t.Fatalf("the commit's answer was not cut (stage %d)", cut.Load())
	}
	total := 0
	for _, c := range readCommitted(t, ctx, brokers, "lost.out", 100) {
		total += c
	}
	if total != 100 {
		t.Fatalf("lost.out holds %d committed records after a commit whose answer was lost, want 100", total)
	}
}
