package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func committedTxns() float64 {
	var m dto.Metric
	_ = metrics.KafkaTransactions.WithLabelValues("txtest", "committed").Write(&m)
	return m.GetCounter().GetValue()
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

	conn := config.KafkaConn{Brokers: brokers}
	src, err := NewSource(config.KafkaSource{KafkaConn: conn, Topics: []string{"tx.in"}, Group: "tx"}, SourceOptions{Pipeline: "txtest", Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(ctx, config.KafkaSink{KafkaConn: conn, Topic: "tx.out", Acks: "all", BatchBytes: 1 << 20, TransactionTimeout: 10 * time.Second},
		SinkOptions{Pipeline: "txtest", ExactlyOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(ctx)
	rd, err := src.OpenReader(ctx, "txtest-1")
	if err != nil {
		t.Fatal(err)
	}
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
	offs, err := adm.FetchOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("group tx committed %d in all, want %d", sum, n)
	}

	// Records of a partition revoked before their batch is written are
	// dropped, not written: the next owner reads them again.
	late := []*connector.Record{{Topic: "tx.in", Partition: 0, Offset: n, Value: []byte("late"), Origin: rd.(*reader).parts[topicPartition{"tx.in", 0}].add(n, n, 1)}}
	rd.(*reader).retire(map[string][]int32{"tx.in": {0}})
	if err := sink.Write(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(ctx); err != nil {
		t.Fatal(err)
	}

	out, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("tx.out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	seen := map[string]int{}
	total := 0
	readCtx, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	for total < n+1 {
		fs := out.PollFetches(readCtx)
		if readCtx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
	}
	if total != n || len(seen) != n || seen["late"] != 0 {
		t.Fatalf("tx.out holds %d records, %d distinct, late %d; want %d once each and no late", total, len(seen), seen["late"], n)
	}
}
