// Package e2e runs whole pipelines against real servers: the kfake Kafka
// broker over its wire protocol, and the sinks' real targets.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startBroker runs an in-process kfake cluster for the test.
func startBroker(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func adminClient(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	return adminClientWith(t, brokers)
}

func adminClientWith(t *testing.T, brokers []string, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, brokers []string, topic string, partitions int32) {
	t.Helper()
	resp, err := adminClient(t, brokers).CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}

// produceN writes n records with keys k<i> and values {"id":i,...}.
func produceN(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	produceAll(t, brokers, nil, from, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000))}
	})
}

// produceAll produces record(i) for i in [from, from+n), at the limiter's
// rate when one is given, waits for every ack and fails the test on the
// first produce error.
func produceAll(t *testing.T, brokers []string, limiter *rate.Limiter, from, n int, record func(i int) *kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxBufferedRecords(50000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	errc := make(chan error, 1)
	for i := from; i < from+n; i++ {
		r := record(i)
		if limiter != nil {
			_ = limiter.Wait(ctx)
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("producing: %v", err)
	default:
	}
}

// consumeAll reads topic from the start until want records arrived or the
// deadline passes, and returns how often each value was seen.
func consumeAll(t *testing.T, brokers []string, topic string, want int, deadline time.Duration) map[string]int {
	t.Helper()
	return consumeAllWith(t, brokers, topic, want, deadline)
}

// consumeAllWith is consumeAll with more client options.
func consumeAllWith(t *testing.T, brokers []string, topic string, want int, deadline time.Duration, opts ...kgo.Opt) map[string]int {
	t.Helper()
	seen := map[string]int{}
	consumeEach(t, brokers, topic, want, deadline, func(r *kgo.Record) { seen[string(r.Value)]++ }, opts...)
	return seen
}

// consumeAllAndExtras reads topic from the start until want records
// arrived or the deadline passes, then for one second more, and returns
// how often each value was seen. Records beyond want (duplicates) are in
// the log already and come in the fetches right after the wanted ones, so
// the deadline can be generous without making every call wait for it.
func consumeAllAndExtras(t *testing.T, brokers []string, topic string, want int, deadline time.Duration, opts ...kgo.Opt) map[string]int {
	t.Helper()
	seen := map[string]int{}
	consumeEachThen(t, brokers, topic, want, deadline, time.Second, func(r *kgo.Record) { seen[string(r.Value)]++ }, opts...)
	return seen
}

// consumeEach reads topic from the start until want records arrived or
// the deadline passes, and hands each to fn, in order per partition.
func consumeEach(t *testing.T, brokers []string, topic string, want int, deadline time.Duration, fn func(*kgo.Record), opts ...kgo.Opt) {
	t.Helper()
	consumeEachThen(t, brokers, topic, want, deadline, 0, fn, opts...)
}

// consumeEachThen is consumeEach that goes on reading for extra once it
// has want records.
func consumeEachThen(t *testing.T, brokers []string, topic string, want int, deadline, extra time.Duration, fn func(*kgo.Record), opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	total := 0
	read := func(ctx context.Context, enough func() bool) {
		for !enough() {
			f := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			f.EachRecord(func(r *kgo.Record) {
				fn(r)
				total++
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	read(ctx, func() bool { return total >= want })
	if extra > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), extra)
		defer cancel()
		read(ctx, func() bool { return false })
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// committed returns the group's committed offsets for topic (none while
// the group has not committed yet).
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitCommittedToEnd waits until group has committed the end offset of
// every partition of topic.
func waitCommittedToEnd(t *testing.T, adm *kadm.Client, group, topic string, d time.Duration) {
	t.Helper()
	eventually(t, d, "committed offsets of "+group+" at the end of "+topic, func() bool {
		got := committed(t, adm, group, topic)
		for p, end := range endOffsets(t, adm, topic) {
			if got[p] != end {
				return false
			}
		}
		return true
	})
}

// eventually polls cond every 50ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// runPipeline builds and runs yaml; stop cancels and waits for Run, and
// runs at the end of the test whatever happened (a failed wait included),
// so no pipeline outlives its test.
func runPipeline(t *testing.T, yaml string) (b *assembly.Built, stop func() error) {
	t.Helper()
	b, err := assembly.Build(context.Background(), parsePipeline(t, yaml), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			if err := b.Close(context.Background()); err != nil && runErr == nil {
				runErr = err
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return b, stop
}
