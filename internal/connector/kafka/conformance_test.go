package kafka

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/conformance"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka sink, at least once and exactly once, against the embedded
// broker. Bad records are of two kinds: a topic template the record lacks
// the field for, and a value larger than the producer may send (Kafka's
// MESSAGE_TOO_LARGE). In exactly-once mode the records come from a real
// reader of a transactional source, and the offsets the suite checks are
// the group's, committed inside the sink's transactions.
func TestKafkaSinkConformance(t *testing.T) {
	for _, eos := range []bool{false, true} {
		mode := "at_least_once"
		if eos {
			mode = "exactly_once"
		}
		t.Run(mode, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) conformance.Target { return kafkaTarget(t, eos) })
		})
	}
}

const confBatchBytes = 64 << 10

func kafkaTarget(t *testing.T, eos bool) conformance.Target {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "conf.in", "conf.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	conn := config.KafkaConn{Brokers: brokers}
	sink, err := NewSink(ctx, config.KafkaSink{KafkaConn: conn, Topic: "{{.Value.dest}}", Acks: "all", BatchBytes: confBatchBytes, TransactionTimeout: 10 * time.Second},
		SinkOptions{Pipeline: "conf", ExactlyOnce: eos})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)

	var rd connector.Reader
	if eos {
		src, err := NewSource(config.KafkaSource{KafkaConn: conn, Topics: []string{"conf.in"}, Group: "conf"}, SourceOptions{Pipeline: "conf", Transactional: true})
		if err != nil {
			t.Fatal(err)
		}
		if rd, err = src.OpenReader(ctx, "conf-1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Close(context.Background()) })
	}
	next := int64(0)
	tg := conformance.Target{
		Sink:        conformance.Owned(t, sink),
		ExactlyOnce: eos,
		Records: func(t *testing.T, bad []bool) []*connector.Record {
			var recs []*connector.Record
			if rd == nil {
				recs = conformance.Spread("conf.in", next, bad, func(*connector.Record, bool) {})
				next += int64(len(bad))
			} else {
				recs = readThrough(t, ctx, admin, rd, len(bad))
			}
			n := 0
			for i, rec := range recs {
				rec.Value = []byte(conformance.KeyOf(rec).String())
				rec.Fields = map[string]any{"dest": "conf.out"}
				if bad[i] {
					if n%2 == 0 {
						delete(rec.Fields, "dest") // the topic template cannot be rendered
					} else {
						rec.Value = bytes.Repeat([]byte("x"), 2*confBatchBytes) // MESSAGE_TOO_LARGE
					}
					n++
				}
			}
			return recs
		},
		Held: func(t *testing.T) map[conformance.Key]int { return heldInTopic(t, ctx, brokers, "conf.out") },
	}
	if eos {
		tg.Stored = func(t *testing.T) map[int32]int64 {
			offs, err := kadm.NewClient(admin).FetchOffsets(kadm.RequireStable(ctx), "conf")
			if err != nil {
				t.Fatal(err)
			}
			stored := map[int32]int64{}
			offs.Each(func(o kadm.OffsetResponse) { stored[o.Partition] = o.At })
			return stored
		}
	}
	return tg
}

// readThrough produces n records to conf.in and reads them back through
// rd, so that they carry the reader's bookkeeping as records in a
// pipeline do.
func readThrough(t *testing.T, ctx context.Context, cl *kgo.Client, rd connector.Reader, n int) []*connector.Record {
	t.Helper()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: "conf.in", Partition: int32(i % 3), Value: []byte("in")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var out []*connector.Record
	for len(out) < n {
		recs, err := rd.Read(ctx, n-len(out))
		if err != nil && len(recs) == 0 {
			t.Fatalf("reading back the records produced: %v", err)
		}
		out = append(out, recs...)
	}
	return out
}

// heldInTopic reads topic (read_committed) to its end and counts the
// records by the source key each one carries as its value. The end is the
// last stable offset when it is called: reading until it is reached, with
// control records kept so that a transaction's marker counts as reached,
// does not take a quiet poll for the end, which a loaded machine gives
// before the records.
func heldInTopic(t *testing.T, ctx context.Context, brokers []string, topic string) map[conformance.Key]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{} // partition -> stable end not yet reached
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("listing the end of %s: %v", topic, o.Err)
		}
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	held := map[conformance.Key]int{}
	readCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	for len(left) > 0 {
		fs := cl.PollFetches(readCtx)
		if readCtx.Err() != nil {
			t.Fatalf("reading %s: partitions not read to their stable end (partition: end) %v", topic, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			var k conformance.Key
			if _, err := fmt.Sscanf(string(r.Value), "%d@%d", &k.Partition, &k.Offset); err != nil {
				t.Errorf("record %q in %s is not one the suite wrote", r.Value, topic)
				return
			}
			held[k]++
		})
	}
	return held
}
