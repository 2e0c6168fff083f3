package devstack

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupMember speaks the classic group protocol by hand, so the test
// decides exactly when it heartbeats, joins or falls silent.
type groupMember struct {
	cl  *kgo.Client
	id  string
	gen int32
}

const (
	testSession   = 6 * time.Second
	testRebalance = 40 * time.Second
)

func (m *groupMember) join(ctx context.Context) (*kmsg.JoinGroupResponse, error) {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"g.in"}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = "g"
	req.SessionTimeoutMillis = int32(testSession.Milliseconds())
	req.RebalanceTimeoutMillis = int32(testRebalance.Milliseconds())
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	for {
		req.MemberID = m.id
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			return nil, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err == kerr.MemberIDRequired {
			m.id = resp.MemberID
			continue
		} else if err != nil {
			return resp, err
		}
		m.id, m.gen = resp.MemberID, resp.Generation
		return resp, nil
	}
}

func (m *groupMember) sync(ctx context.Context, members []kmsg.JoinGroupResponseMember) error {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = "g", m.id, m.gen
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for _, mm := range members { // the leader assigns nothing: the test is about membership
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: mm.MemberID})
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	return err
}

// awaitRebalance heartbeats until the group says it rebalances.
func (m *groupMember) awaitRebalance(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		if err := m.heartbeat(ctx); err == kerr.RebalanceInProgress {
			return
		} else if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *groupMember) heartbeat(ctx context.Context) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = "g", m.id, m.gen
	resp, err := req.RequestWith(ctx, m.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	return err
}

// The embedded broker expired a member that waited in JoinGroup longer
// than its session timeout, where Kafka keeps such a member alive (the
// rebalance timeout bounds the wait). A rebalance that waits for a dead
// member lasts that member's session timeout, so the survivors, whose
// last heartbeats were about as old, were expired with it: they got
// UNKNOWN_MEMBER_ID, lost their partitions, rejoined, and with a leader
// killed meanwhile the group cycled for minutes (issue 18). A survivor
// waiting in JoinGroup must be in the generation that the join completes.
func TestGroupKeepsAMemberWaitingInJoinAlive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	s, err := Start(ctx, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	member := func() *groupMember {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return &groupMember{cl: cl}
	}
	survivor, dead, newcomer := member(), member(), member()

	// survivor, then dead, form a stable group (survivor leads).
	resp, err := survivor.join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := survivor.sync(ctx, resp.Members); err != nil {
		t.Fatal(err)
	}
	deadSynced := make(chan error, 1)
	go func() {
		if _, err := dead.join(ctx); err != nil {
			deadSynced <- err
			return
		}
		deadSynced <- dead.sync(ctx, nil)
	}()
	survivor.awaitRebalance(t, ctx)
	if resp, err = survivor.join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := survivor.sync(ctx, resp.Members); err != nil {
		t.Fatal(err)
	}
	if err := <-deadSynced; err != nil {
		t.Fatal(err)
	}

	// A newcomer joins; the survivor rejoins at once, and the dead member
	// heartbeats once more a little later, then falls silent: the join
	// waits for it until its session ends, which is after the
	// survivor's session would have, counted from its last heartbeat.
	go func() { _, _ = newcomer.join(ctx) }()
	survivor.awaitRebalance(t, ctx)
	rejoined := make(chan error, 1)
	started := time.Now()
	go func() { _, err := survivor.join(ctx); rejoined <- err }()
	time.Sleep(testSession / 2) // the dead member's last sign of life, later than the survivor's
	if err := dead.heartbeat(ctx); err != kerr.RebalanceInProgress {
		t.Fatalf("dead member's last heartbeat: %v", err)
	}
	select {
	case err := <-rejoined:
		if err != nil {
			t.Fatalf("the survivor, waiting in JoinGroup, was dropped from the group after %.1f s: %v", time.Since(started).Seconds(), err)
		}
	case <-ctx.Done():
		t.Fatal("the survivor's JoinGroup never completed")
	}
}
