package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFetchPropertiesReachTheClient: the fetch properties of
// source.kafka.properties set the franz-go options they name (a property
// parsed but never handed to the client would tune nothing), and unset
// they leave franz-go's defaults (Kafka's, except fetch.max.wait.ms: 5 s
// where Kafka's Java client waits 500 ms), which README states.
func TestFetchPropertiesReachTheClient(t *testing.T) {
	for _, tc := range []struct {
		prop string
		val  any
		opt  any // a kgo option function
		want any
		def  any
	}{
		{"fetch.min.bytes", 65536, kgo.FetchMinBytes, int32(65536), int32(1)},
		{"fetch.max.wait.ms", 100, kgo.FetchMaxWait, 100 * time.Millisecond, 5 * time.Second},
		{"fetch.max.bytes", 1 << 20, kgo.FetchMaxBytes, int32(1 << 20), int32(50 << 20)},
		{"max.partition.fetch.bytes", 1 << 16, kgo.FetchMaxPartitionBytes, int32(1 << 16), int32(1 << 20)},
	} {
		t.Run(tc.prop, func(t *testing.T) {
			for _, set := range []bool{true, false} {
				props := map[string]any{}
				want := tc.def
				if set {
					props[tc.prop], want = tc.val, tc.want
				}
				cl := clientWith(t, props)
				if got := cl.OptValue(tc.opt); got != want {
					t.Errorf("%s set=%v: client option = %v, want %v", tc.prop, set, got, want)
				}
			}
		})
	}
}

// clientWith builds (without connecting) the consumer client a source
// with props would open.
func clientWith(t *testing.T, props map[string]any) *kgo.Client {
	t.Helper()
	cfg := config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: []string{"127.0.0.1:1"}}, Topics: []string{"t"}, Group: "g", Properties: props}
	s, err := NewSource(cfg, SourceOptions{Pipeline: "props", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := s.clientOptions(cfg, s.props, &reader{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestMaxPollRecordsBoundsEachRead: with max.poll.records, no Read returns
// more records than it, even when asked for more or for all that is
// buffered.
func TestMaxPollRecordsBoundsEachRead(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "mp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 1000
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Topic: "mp", Value: fmt.Appendf(nil, "%d", i)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: c.ListenAddrs()}, Topics: []string{"mp"}, Group: "mp",
		Properties: map[string]any{"max.poll.records": 37}}, SourceOptions{Pipeline: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := src.OpenReader(ctx, "mp-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close(context.Background()) })
	got := 0
	for i := 0; got < n; i++ {
		recs, err := rd.Read(ctx, []int{0, 500}[i%2])
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 37 {
			t.Fatalf("a read returned %d records; max.poll.records is 37", len(recs))
		}
		got += len(recs)
		rd.Ack(recs)
	}
}
