package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/faultproxy"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestExactlyOnceCommitReportedFailedButCommittedWritesOnce: the broker
// commits the transaction, but neither the answer to the sink's EndTxn nor
// to any of the client's retries of it arrives, so the commit is reported
// failed. The sink's fallback reads the group's stable offsets, sees the
// batch's own, and reports the batch written: the output holds it exactly
// once. (Without the fallback the write fails, the engine writes the
// batch again in a new transaction, and read_committed readers see it
// twice.)
func TestExactlyOnceCommitReportedFailedButCommittedWritesOnce(t *testing.T) {
	var proxy *faultproxy.Proxy
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "unconfirmed.in", "unconfirmed.out"),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			ln, p, err := faultproxy.ListenBehind(network, address)
			proxy = p
			return ln, err
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = proxy.Close() })
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const n = 100
	for i := 0; i < n; i++ {
		raw.Produce(ctx, &kgo.Record{Topic: "unconfirmed.in", Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := raw.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn := config.KafkaConn{Brokers: brokers}
	src, err := NewSource(config.KafkaSource{KafkaConn: conn, Topics: []string{"unconfirmed.in"}, Group: "unconfirmed"},
		SourceOptions{Pipeline: "unconfirmed", Transactional: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(ctx, config.KafkaSink{KafkaConn: conn, Topic: "unconfirmed.out", Acks: "all", BatchBytes: 1 << 20, TransactionTimeout: 60 * time.Second},
		SinkOptions{Pipeline: "unconfirmed", ExactlyOnce: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(ctx)
	rd, err := src.OpenReader(ctx, "unconfirmed-1")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close(ctx)
	var recs []*connector.Record
	for len(recs) < n {
		more, err := rd.Read(ctx, n-len(recs))
		if err != nil && len(more) == 0 {
			t.Fatal(err)
		}
		recs = append(recs, more...)
	}

	// Every EndTxn's answer is dropped on its connection (the client's
	// retries open new ones: each is armed again) until the write returns.
	proxy.DropAnswersAfter(faultproxy.KafkaRequest(kmsg.EndTxn.Int16()), 0, 0)
	written := make(chan error, 1)
	go func() { written <- sink.Write(ctx, recs) }()
	var werr error
	for armed := int64(1); ; {
		select {
		case werr = <-written:
		case <-time.After(20 * time.Millisecond):
			if d := proxy.Stats().Drops; d == armed {
				armed++
				proxy.DropAnswersAfter(faultproxy.KafkaRequest(kmsg.EndTxn.Int16()), 0, 0)
			}
			continue
		}
		break
	}
	proxy.Disarm()
	st := proxy.Stats()
	if st.Drops == 0 || st.DroppedBytes == 0 {
		t.Fatalf("no EndTxn answer was dropped (%+v): the fault did not happen", st)
	}
	if werr != nil {
		t.Fatalf("the write of a batch whose transaction committed failed: %v", werr)
	}
	if !strings.Contains(logs.String(), "the group's offsets show it committed") {
		t.Fatalf("the write succeeded, but not through the fallback for an unconfirmed commit; logs:\n%s", logs.String())
	}
	rd.Ack(recs)
	seen := readCommitted(t, ctx, brokers, "unconfirmed.out", n)
	total := 0
	for i := 0; i < n; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("record %d is %d times in the output, want once", i, seen[fmt.Sprint(i)])
		}
	}
	for _, c := range seen {
		total += c
	}
	if total != n {
		t.Fatalf("output holds %d committed records, want %d", total, n)
	}
	t.Logf("%d EndTxn answers dropped; the commit was reported failed, the fallback found it committed: %d records in, %d out, 0 duplicated", st.Drops, n, total)
}
