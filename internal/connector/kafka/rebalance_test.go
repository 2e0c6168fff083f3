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
		return kerr.ErrorForCode(sresp.ErrorCode)
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
	eventually(t, 20*time.Second, "the survivor owns every partition", func() bool { return countAssigned(rd) == parts })

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
