package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A backfill with stop_at: end moves exactly the records present at the
// start, commits them and exits 0 by itself, saying what it moved; run
// again after more records arrived, it moves exactly those. The pipeline
// also stamps records with the event time of a field (timestamp policy
// field), which is what the Kafka sink's records carry, and a record
// without the field is bad input (skipped here), never stamped with a
// default.
func TestBoundedReadMovesExactlyWhatWasThereAndExits(t *testing.T) {
	bin := buildSluice(t)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "bf.in", 3)
	createTopic(t, brokers, "bf.out", 3)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	produce := func(from, n int) {
		produceAll(t, brokers, nil, from, n, func(i int) *kgo.Record {
			return &kgo.Record{Topic: "bf.in", Key: []byte(fmt.Sprintf("k%d", i)),
				Value: []byte(fmt.Sprintf(`{"id":%d,"at":%d}`, i, base.Add(time.Duration(i)*time.Second).UnixMilli()))}
		})
	}
	produce(0, 3000)
	produceAll(t, brokers, nil, 0, 1, func(int) *kgo.Record {
		return &kgo.Record{Topic: "bf.in", Value: []byte(`{"id":-1}`)} // no "at"
	})
	file := filepath.Join(t.TempDir(), "bf.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: bf
source:
  kafka: {brokers: [%[1]s], topics: [bf.in], group: bf, consumers: 2, stop_at: end}
format: {value: json}
timestamp: {policy: field, field: at, format: unix_ms}
on_error: skip
sink:
  kafka: {brokers: [%[1]s], topic: bf.out}
`, brokers[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var stdout bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "run", "--log-level", "warn", file)
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		start := time.Now()
		defer func() { t.Logf("bounded run took %.1f s", time.Since(start).Seconds()) }()
		if err := cmd.Run(); err != nil {
			t.Fatalf("sluice run with stop_at: end: %v (want exit 0 by itself)\n%s", err, stdout.String())
		}
		return stdout.String()
	}
	adm := adminClient(t, brokers)
	checkOut := func(want int) {
		t.Helper()
		if got := sum(endOffsets(t, adm, "bf.out")); got != int64(want) {
			t.Fatalf("bf.out holds %d records, want exactly %d", got, want)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("bf.out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		seen := map[int]bool{}
		for len(seen) < want && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var v struct{ ID int }
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatal(err)
				}
				if at := base.Add(time.Duration(v.ID) * time.Second); !r.Timestamp.Equal(at) {
					t.Fatalf("record %d carries timestamp %v, want its field's %v", v.ID, r.Timestamp, at)
				}
				seen[v.ID] = true
			})
		}
		if len(seen) != want {
			t.Fatalf("%d distinct records in bf.out, want %d", len(seen), want)
		}
	}

	out := run()
	if !strings.Contains(out, "moved 3000 records") || !strings.Contains(out, "skipped 1") {
		t.Fatalf("sluice run did not say what it moved (want 3000 moved, 1 skipped):\n%s", out)
	}
	checkOut(3000)
	waitCommittedToEnd(t, adm, "bf", "bf.in", 10*time.Second)

	produce(3000, 500)
	out = run()
	if !strings.Contains(out, "moved 500 records") {
		t.Fatalf("the second backfill did not move exactly the 500 new records:\n%s", out)
	}
	checkOut(3500)
	waitCommittedToEnd(t, adm, "bf", "bf.in", 10*time.Second)

	if out = run(); !strings.Contains(out, "moved 0 records") {
		t.Fatalf("a backfill with nothing new moved something:\n%s", out)
	}
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// stop_at max_records moves exactly that many records, commits exactly
// them (the next run starts after them) and stops by itself; max_read_time
// stops a pipeline that has nothing to read.
func TestBoundedReadByCountAndByTime(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "bc.in", 3)
	createTopic(t, brokers, "bc.out", 3)
	produceN(t, brokers, "bc.in", 0, 1000)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: bc
source:
  kafka: {brokers: [%[1]s], topics: [bc.in], group: bc, consumers: 2, stop_at: {max_records: 250}, properties: {max.poll.records: 40}}
sink:
  kafka: {brokers: [%[1]s], topic: bc.out}
`, brokers[0]))
	eventually(t, 30*time.Second, "the pipeline stopping by itself", func() bool { return b.Pipeline.Status().State == "stopped" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	adm := adminClient(t, brokers)
	if got := sum(endOffsets(t, adm, "bc.out")); got != 250 {
		t.Fatalf("bc.out holds %d records, want exactly max_records 250", got)
	}
	if got := sum(committed(t, adm, "bc", "bc.in")); got != 250 {
		t.Fatalf("the group committed %d records, want exactly the 250 moved", got)
	}

	b, stop = runPipeline(t, fmt.Sprintf(`
name: bt
source:
  kafka: {brokers: [%[1]s], topics: [bc.out], group: bt, start_from: latest, stop_at: {max_read_time: 1s}}
sink:
  kafka: {brokers: [%[1]s], topic: bc.in}
`, brokers[0]))
	eventually(t, 30*time.Second, "the pipeline stopping after max_read_time", func() bool { return b.Pipeline.Status().State == "stopped" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A backfill (stop_at: end) shared with another member of the group: the
// sluice process finishes its own partitions, then waits until the other
// member has committed the rest at their ends, and only then exits 0.
func TestBoundedReadWaitsForPartitionsAnotherMemberOwns(t *testing.T) {
	bin := buildSluice(t)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "b2.in", 4)
	createTopic(t, brokers, "b2.out", 4)
	produceN(t, brokers, "b2.in", 0, 2000)
	// The other member: joins first, takes everything, reads nothing yet.
	other, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("b2"), kgo.ConsumeTopics("b2.in"),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	adm := adminClient(t, brokers)
	eventually(t, 30*time.Second, "the other member owning the partitions", func() bool {
		ds, err := adm.DescribeGroups(context.Background(), "b2")
		return err == nil && ds["b2"].State == "Stable" && len(ds["b2"].Members) == 1
	})
	file := filepath.Join(t.TempDir(), "b2.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: b2
source:
  kafka: {brokers: [%[1]s], topics: [b2.in], group: b2, stop_at: end}
sink:
  kafka: {brokers: [%[1]s], topic: b2.out}
`, brokers[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "run", "--log-level", "warn", file)
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ends := endOffsets(t, adm, "b2.in")
	var n int
	var share int64 // the records of the partitions sluice owns
	eventually(t, 30*time.Second, "sluice committing its share at the end", func() bool {
		n, share = 0, 0
		for p, off := range committed(t, adm, "b2", "b2.in") {
			if off == ends[p] {
				n, share = n+1, share+off
			}
		}
		return n == 2 // cooperative-sticky gave it two of the four
	})
	select {
	case err := <-exited:
		t.Fatalf("sluice exited (%v) while the other member had not finished its partitions:\n%s", err, stdout.String())
	case <-time.After(500 * time.Millisecond): // it must still be waiting
	}
	// The other member reads and commits its share.
	for read := int64(0); read < 2000-share && ctx.Err() == nil; {
		read += int64(other.PollFetches(ctx).NumRecords())
	}
	if err := other.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("sluice run: %v (want exit 0 once every partition is at its end)\n%s", err, stdout.String())
	}
	if want := fmt.Sprintf("moved %d records", share); !strings.Contains(stdout.String(), want) {
		t.Fatalf("sluice did not say it %s (its two partitions):\n%s", want, stdout.String())
	}
}
