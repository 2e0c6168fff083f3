package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTrackerLagAgainstTheListedEnd(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tr := newPartitionTracker("films", 0)
	tr.hwm = 100
	c := tr.add(0, 99, 100)
	c.firstTimestamp = now.Add(-7 * time.Second)
	tr.setEnd(5000, now)
	if l := tr.lag(); l != 5000 {
		t.Fatalf("lag = %d, want 5000 (the listed end, not the fetch's high watermark)", l)
	}
	if a := tr.lagAge(now); a != 7*time.Second {
		t.Fatalf("age = %s, want the 7 s of the oldest record in flight", a)
	}
	c.ack(100)
	tr.setEnd(5000, now)
	if l, a := tr.lag(), tr.lagAge(now.Add(3*time.Second)); l != 4900 || a != 3*time.Second {
		t.Fatalf("nothing in flight, 4,900 waiting: lag %d, age %s; want 4900 and the 3 s since they were seen", l, a)
	}
	d := tr.add(100, 4999, 4900)
	d.firstTimestamp = now
	d.ack(4900)
	tr.setEnd(5000, now.Add(5*time.Second))
	if l, a := tr.lag(), tr.lagAge(now.Add(5*time.Second)); l != 0 || a != 0 {
		t.Fatalf("caught up: lag %d, age %s", l, a)
	}
}

// TestLagCountsRecordsProducedAfterTheLastFetch: lag was measured against
// the last fetch's high watermark, so records produced while the consumer
// did not fetch (in-flight cap reached, paused for a merge) never showed:
// lag equalled what was in flight. The end offset is now listed on a
// timer.
func TestLagCountsRecordsProducedAfterTheLastFetch(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lag.in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	brokers := c.ListenAddrs()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("lag.in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pcl.Close)
	produce := func(n int) {
		t.Helper()
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Value: []byte("x")}
		}
		if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(1000)
	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{"lag.in"}, Group: "lag",
		StartFrom: "earliest"}, SourceOptions{Pipeline: "lag"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := src.OpenReader(ctx, "lag-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rd.Close(context.Background()) })
	var read int
	for read < 1000 {
		recs, err := rd.Read(ctx, 1000-read)
		if err != nil && len(recs) == 0 {
			t.Fatal(err)
		}
		read += len(recs)
	}
	// 1,000 read and in flight (not acked); 4,000 more arrive and are not
	// read. The lag is all 5,000.
	produce(4000)
	r := rd.(*reader)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := r.Lag()["lag.in"][0]
		if l == 5000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag = %d after 30 s, want 5000 (1,000 in flight + 4,000 never fetched)", l)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if age := r.LagAge(); age <= 0 {
		t.Fatalf("lag age %s with 1,000 records in flight", age)
	}
}
