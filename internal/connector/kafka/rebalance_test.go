package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinAndFallSilent joins group as a classic cooperative-sticky member,
// syncs once, then never heartbeats or rejoins again: what a member killed
// with SIGKILL looks like to the coordinator. The next rebalance waits for
// it for its rebalance timeout.
func joinAndFallSilent(ctx context.Context, cl *kgo.Client, group, topic string, timeout time.Duration) error {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 1
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = group
	join.SessionTimeoutMillis = int32(timeout.Milliseconds())
	join.RebalanceTimeoutMillis = int32(timeout.Milliseconds())
	join.ProtocolType = "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: meta.AppendTo(nil)}}
	for {
		resp, err := join.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err == kerr.MemberIDRequired {
			join.MemberID = resp.MemberID
			continue
		} else if err != nil {
			return err
		}
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.MemberID, sync.Generation = group, resp.MemberID, resp.Generation
		sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), resp.Protocol
		sresp, err := sync.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(sresp.ErrorCode); err != kerr.RebalanceInProgress {
			return err
		}
		// The survivor's cooperative rejoin started the next round before
		// this sync (a loaded machine): the member is in the group and
		// never rejoins, so that round waits for it, which is the point.
		return nil
	}
}

// Commits kept failing with "context deadline exceeded" on the survivors of
// a rebalance that waited for a dead member: franz-go blocks commits from
// JoinGroup to SyncGroup, and the join lasts until the dead member's
// session times out. A survivor must keep committing what is durable for
// the partitions it still owns while the group is still rebalancing.
func TestCommitsKeepFlowingWhileARebalanceWaitsForADeadMember(t *testing.T) {
	const topic, group, parts, perPart = "rb", "rb-group", 4, 50
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)

	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	for p := int32(0); p < parts; p++ {
		for i := 0; i < perPart; i++ {
			if err := raw.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(raw)

	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{topic}, Group: group,
		Properties: map[string]any{"auto.commit.interval.ms": 100, "heartbeat.interval.ms": 200, "max.poll.records": 10}},
		SourceOptions{Pipeline: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := src.OpenReader(ctx, "rb-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close(context.Background()) })
	eventually(t, 30*time.Second, "the survivor owns every partition", func() bool { return countAssigned(rd) == parts })

	// The dead-to-be member joins: the survivor gives it half the
	// partitions (cooperatively: it revokes them, then rejoins), and that
	// second join waits for the silent member for 20 s.
	silent := make(chan error, 1)
	go func() { silent <- joinAndFallSilent(ctx, raw, group, topic, 20*time.Second) }()
	eventually(t, 20*time.Second, "the survivor keeps half the partitions", func() bool { return countAssigned(rd) == parts/2 })
	if err := <-silent; err != nil {
		t.Fatalf("silent member: %v", err)
	}
	eventually(t, 20*time.Second, "the group waits for the silent member", func() bool { return groupState(ctx, adm, group) == "PreparingRebalance" })

	// The survivor reads and acks what it still owns: its commits must
	// land while the group is still waiting.
	want := map[int32]int64{}
	for len(want) < parts/2 || !allAt(want, perPart) {
		recs, err := rd.Read(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		rd.Ack(recs)
		for _, r := range recs {
			want[r.Partition] = r.Offset + 1
		}
	}
	eventually(t, 10*time.Second, "offsets committed for the owned partitions", func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p, off := range want {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != off {
				return false
			}
		}
		return true
	})
	if st := groupState(ctx, adm, group); st != "PreparingRebalance" {
		t.Fatalf("group state %s when the commits landed: the test did not commit during the rebalance", st)
	}
}

func countAssigned(rd connector.Reader) int {
	n := 0
	for _, a := range rd.(interface{ Assigned() []connector.Assignment }).Assigned() {
		n += len(a.Partitions)
	}
	return n
}

func allAt(m map[int32]int64, off int64) bool {
	for _, o := range m {
		if o != off {
			return false
		}
	}
	return true
}

func groupState(ctx context.Context, adm *kadm.Client, group string) string {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return ""
	}
	return ds[group].State
}

// produceNumbered writes n records valued (and keyed) "0" to n-1 to topic
// and returns the producing client, closed with the test.
func produceNumbered(t *testing.T, ctx context.Context, brokers []string, topic string, n int) *kgo.Client {
	t.Helper()
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	for i := 0; i < n; i++ {
		v := []byte(fmt.Sprint(i))
		raw.Produce(ctx, &kgo.Record{Key: v, Value: v}, nil)
	}
	if err := raw.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return raw
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A crash re-delivers what was written since the last commit, and with
// commits on a timer alone that grew with throughput (31,553 records in
// one kill). commit.every.records commits as soon as that many records
// were acked, whatever auto.commit.interval.ms says.
func TestCommitsAfterCommitEveryRecordsWithoutWaitingForTheInterval(t *testing.T) {
	const topic, group = "every", "every-group"
	brokers := startCluster(t, kfake.SeedTopics(1, topic))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	raw := produceNumbered(t, ctx, brokers, topic, 1000)
	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{topic}, Group: group,
		Properties: map[string]any{"auto.commit.interval.ms": 3600000, "commit.every.records": 300}},
		SourceOptions{Pipeline: "every"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := src.OpenReader(ctx, "every-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close(context.Background()) })
	acked := int64(0)
	for acked < 1000 {
		recs, err := rd.Read(ctx, 250)
		if err != nil {
			t.Fatal(err)
		}
		rd.Ack(recs)
		acked = recs[len(recs)-1].Offset + 1
	}
	adm := kadm.NewClient(raw)
	// Every 300 acked records a commit: the last one was taken at 750 or
	// later (acks come 250 at a time), long before the hourly timer.
	eventually(t, 30*time.Second, "a commit at 750 or later", func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, 0)
		return ok && o.At >= 750
	})
}

// group_protocol: consumer joins a KIP-848 group (the broker assigns):
// two readers split the partitions, and what they ack is committed.
func TestGroupProtocolConsumerJoinsAKIP848Group(t *testing.T) {
	const topic, group, parts = "ng", "ng-group", 4
	brokers := startCluster(t, kfake.SeedTopics(parts, topic))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	raw := produceNumbered(t, ctx, brokers, topic, 400)
	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{topic}, Group: group,
		GroupProtocol: "consumer", Properties: map[string]any{"auto.commit.interval.ms": 100}},
		SourceOptions{Pipeline: "ng"})
	if err != nil {
		t.Fatal(err)
	}
	var readers []connector.Reader
	for _, name := range []string{"ng-1", "ng-2"} {
		rd, err := src.OpenReader(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Close(context.Background()) })
		readers = append(readers, rd)
	}
	eventually(t, 30*time.Second, "both readers own partitions", func() bool {
		return countAssigned(readers[0]) > 0 && countAssigned(readers[1]) > 0 && countAssigned(readers[0])+countAssigned(readers[1]) == parts
	})
	adm := kadm.NewClient(raw)
	dg, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if g := dg[group]; g.Err != nil || len(g.Members) != 2 {
		t.Fatalf("KIP-848 describe of %s: %+v", group, g)
	}
	read := 0
	for read < 400 {
		for _, rd := range readers {
			rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			recs, _ := rd.Read(rctx, 0)
			rcancel()
			rd.Ack(recs)
			read += len(recs)
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of 400", read)
		}
	}
	eventually(t, 30*time.Second, "every record committed", func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum == 400
	})
}
