package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startBroker runs an in-process kfake broker for the test and returns its
// address; topics are created with kfake.SeedTopics.
func startBroker(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func adminClient(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produceAndRead runs Produce, fails the test unless every record was
// acked, and returns the result and the records read back from the topic.
func produceAndRead(t *testing.T, o ProduceOptions) (ProduceResult, []*kgo.Record) {
	t.Helper()
	res, err := Produce(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Records == 0 {
		t.Fatalf("acked %d records with %d errors: %v", res.Records, res.Errors, res.ErrorSummary())
	}
	return res, consumeAll(t, o.Brokers, o.Topic, int(res.Records))
}

// consumeAll reads topic from the start until want records arrived or 30 s
// passed, and returns what it read.
func consumeAll(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != want {
		t.Fatalf("read %d records from %s, want %d", len(out), topic, want)
	}
	return out
}

// endOffsetTotal is the number of records in topic, over every partition.
func endOffsetTotal(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ends, err := adminClient(t, brokers).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

// perBucket counts records by the time they were produced, in buckets of
// width from the start of the run.
func perBucket(res ProduceResult, records []*kgo.Record, width time.Duration) []int {
	var counts []int
	// Kafka timestamps carry milliseconds: truncate the start the same
	// way, or a record produced just after a bucket's start can land, by
	// truncation, in the bucket before it.
	started := res.Started.Truncate(time.Millisecond)
	for _, r := range records {
		i := int(r.Timestamp.Sub(started) / width)
		if i < 0 {
			i = 0
		}
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	return counts
}
