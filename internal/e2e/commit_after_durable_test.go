package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// gatedSink holds every write until open is closed, then accepts it.
type gatedSink struct {
	open    chan struct{}
	written atomic.Int64
}

func (s *gatedSink) Write(ctx context.Context, batch []*connector.Record) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.written.Add(int64(len(batch)))
	return nil
}

func (s *gatedSink) Close(context.Context) error { return nil }

// TestNoOffsetCommittedBeforeTheSinkIsDurable runs the real Kafka source
// against a sink that does not return: records are read, but the group's
// committed offsets stay empty through many commit intervals; once the sink
// returns, the offsets reach the end.
func TestNoOffsetCommittedBeforeTheSinkIsDurable(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "durable.in", 3)
	const n = 5000
	produceN(t, brokers, "durable.in", 0, n)
	src, err := kafka.NewSource(config.KafkaSource{
		KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{"durable.in"}, Group: "durable",
		StartFrom: "earliest", Properties: map[string]any{"auto.commit.interval.ms": 50},
	}, kafka.SourceOptions{Pipeline: "durable", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sink := &gatedSink{open: make(chan struct{})}
	p, err := pipeline.New(pipeline.Options{Name: "durable", Source: src, Sink: sink, BatchRecords: 500, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	adm := adminClient(t, brokers)
	eventually(t, 30*time.Second, "records read while the sink holds them", func() bool { return p.Status().RecordsIn > 0 })
	time.Sleep(time.Second) // twenty commit intervals, not a synchronisation
	if got := committed(t, adm, "durable", "durable.in"); len(got) != 0 {
		t.Fatalf("offsets %v committed while no write had returned", got)
	}
	close(sink.open)
	ends := endOffsets(t, adm, "durable.in")
	eventually(t, 30*time.Second, "committed offsets at the end once writes returned", func() bool {
		got := committed(t, adm, "durable", "durable.in")
		for part, end := range ends {
			if got[part] != end {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w := sink.written.Load(); w != n {
		t.Fatalf("sink got %d records, want %d", w, n)
	}
}
