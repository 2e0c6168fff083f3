package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// propSource is a memSource with Kafka consumer properties: readers take
// max.poll.records when opened, like Kafka readers do.
type propSource struct {
	*memSource
	mu      sync.Mutex
	props   map[string]any
	parsed  config.ConsumerProperties
	opened  []string // member ids, in open order
	lastMax atomic.Int64
	// refuse, when set, fails OpenReader as a broker refusing the
	// properties would.
	refuse func(member string, props config.ConsumerProperties) error
	// openedWith are the properties each reader was opened with.
	openedWith []config.ConsumerProperties
}

func newPropSource(n int, props map[string]any) *propSource {
	s := &propSource{memSource: newMemSource(n, plain)}
	if err := s.SetProperties(props); err != nil {
		panic(err)
	}
	return s
}

func (s *propSource) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		if err := s.refuse(member, s.parsed); err != nil {
			return nil, err
		}
	}
	s.opened = append(s.opened, member)
	s.openedWith = append(s.openedWith, s.parsed)
	r, _ := s.memSource.OpenReader(ctx, member)
	return &propReader{Reader: r, s: s, maxPoll: s.parsed.MaxPollRecords}, nil
}

func (s *propSource) Properties() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{}
	for k, v := range s.props {
		out[k] = v
	}
	return out
}

func (s *propSource) SetProperties(changes map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	merged := map[string]any{}
	for k, v := range s.props {
		merged[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	parsed, probs := config.ParseConsumerProperties(merged)
	if len(probs) > 0 {
		return fmt.Errorf("%s: %s", probs[0].Name, probs[0].Problem)
	}
	s.props, s.parsed = merged, parsed
	return nil
}

func (s *propSource) MaxPollRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parsed.MaxPollRecords
}

func (s *propSource) openedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.opened)
}

type propReader struct {
	connector.Reader
	s       *propSource
	maxPoll int
}

func (r *propReader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	if r.maxPoll > 0 && r.maxPoll < max {
		max = r.maxPoll
	}
	r.s.lastMax.Store(int64(max))
	return r.Reader.Read(ctx, max)
}

func TestReconfigureRestartsEveryConsumerAndLosesNothing(t *testing.T) {
	const n = 20000
	src := newPropSource(n, map[string]any{"max.poll.records": 10})
	// A slow sink keeps records flowing while the consumers restart.
	sink := &memSink{onWrite: func() { time.Sleep(time.Millisecond) }}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, MaxPollRecords: 10, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "some records written", func() bool { return sink.count() > 1000 })
	// The first consumer may write before Run has opened the second.
	waitRunning(t, p)
	if got := src.lastMax.Load(); got != 10 {
		t.Fatalf("reads asked for %d records, want max.poll.records 10", got)
	}
	before := p.Status().Consumers

	if err := p.Reconfigure(ctx, map[string]any{"max.poll.records": 50}); err != nil {
		t.Fatal(err)
	}
	if sink.count() >= n {
		t.Fatal("every record was written before the restart finished; the test needs records flowing")
	}
	if p.MaxPollRecords() != 50 || p.Properties()["max.poll.records"] != 50 {
		t.Fatalf("after the change: engine max poll %d, properties %v", p.MaxPollRecords(), p.Properties())
	}
	waitFor(t, "a read with the new max.poll.records", func() bool { return src.lastMax.Load() == 50 })
	after := p.Status().Consumers
	if len(after) != len(before) || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
		t.Fatalf("consumers before %v, after %v: want the same ids back", before, after)
	}
	if opened := src.openedIDs(); len(opened) != 4 {
		t.Fatalf("readers opened: %v, want 2 at start and 2 restarts", opened)
	}

	waitFor(t, "every record acked", func() bool { d, _ := src.ackedCount(); return d == n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if distinct, total := src.ackedCount(); distinct != n || total != n || sink.count() != n {
		t.Fatalf("acked %d distinct (%d acks), sink holds %d; want %d each", distinct, total, sink.count(), n)
	}
}

func TestReconfigureRefusesBadPropertiesAndChangesNothing(t *testing.T) {
	src := newPropSource(10, map[string]any{"max.poll.records": 10})
	p, _ := New(Options{Name: "t", Source: src, Sink: &memSink{}, MaxPollRecords: 10, Logger: quiet})
	for _, changes := range []map[string]any{
		{"max.poll.recrods": 5},
		{"max.poll.records": "many"},
		{"max.poll.records": 20, "fetch.max.wait.ms": -1},
	} {
		err := p.Reconfigure(context.Background(), changes)
		if !errors.Is(err, ErrInvalidProperties) {
			t.Fatalf("Reconfigure(%v) = %v, want ErrInvalidProperties", changes, err)
		}
	}
	if p.MaxPollRecords() != 10 || src.Properties()["max.poll.records"] != 10 {
		t.Fatalf("a refused change changed something: max poll %d, properties %v", p.MaxPollRecords(), src.Properties())
	}
	plainP, _ := New(Options{Name: "t", Source: newMemSource(1, plain), Sink: &memSink{}, Logger: quiet})
	if err := plainP.Reconfigure(context.Background(), map[string]any{"max.poll.records": 5}); !errors.Is(err, ErrNotReconfigurable) {
		t.Fatalf("Reconfigure on a source without properties = %v, want ErrNotReconfigurable", err)
	}
}

func TestReconfigureWhilePausedStaysPaused(t *testing.T) {
	src := newPropSource(100000, map[string]any{"max.poll.records": 10})
	sink := &memSink{}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, MaxPollRecords: 10, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "records written", func() bool { return sink.count() > 100 })
	waitRunning(t, p) // paused while starting is TestPauseWhileStartingSaysPaused
	p.PauseOperator()
	if err := p.Reconfigure(ctx, map[string]any{"max.poll.records": 20}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new consumers to park at the pause gate", p.drained)
	held := sink.count()
	time.Sleep(50 * time.Millisecond) // a window for writes that must not happen
	if st := p.Status(); st.State != StatePaused || sink.count() != held {
		t.Fatalf("state %s, %d records written while paused", st.State, sink.count()-held)
	}
	p.ResumeOperator()
	waitFor(t, "writes after resume", func() bool { return sink.count() > held })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitRunning waits until Run has opened every consumer.
func waitRunning(t *testing.T, p *Pipeline) {
	t.Helper()
	waitFor(t, "the pipeline running", func() bool { return p.Status().State == StateRunning })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestReconfigureRollsBackWhenAConsumerCannotStartWithTheChange: a
// property change the broker refused left the consumer gone for good
// while status said running. Now the change is rolled back, the consumer
// restarted with the previous properties (also the one already restarted
// with the new ones), the call says so, and every record still arrives.
func TestReconfigureRollsBackWhenAConsumerCannotStartWithTheChange(t *testing.T) {
	const n = 20000
	src := newPropSource(n, map[string]any{"max.poll.records": 10})
	var first string
	src.refuse = func(member string, props config.ConsumerProperties) error {
		// The second consumer's broker refuses the new fetch.min.bytes.
		if props.FetchMinBytes == 999 && member != first {
			return errors.New("broker says INVALID_REQUEST")
		}
		return nil
	}
	sink := &memSink{onWrite: func() { time.Sleep(time.Millisecond) }}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, MaxPollRecords: 10, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "some records written", func() bool { return sink.count() > 500 })
	waitRunning(t, p) // both consumers open, or the change would meet one only
	first = p.Status().Consumers[0].ID
	before := src.Properties()

	err = p.Reconfigure(ctx, map[string]any{"fetch.min.bytes": 999, "max.poll.records": 50})
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "INVALID_REQUEST") {
		t.Fatalf("Reconfigure = %v, want ErrRolledBack with the broker's reason", err)
	}
	if got := src.Properties(); !maps.Equal(got, before) || p.MaxPollRecords() != 10 {
		t.Fatalf("after the roll back: properties %v, max poll %d; want %v and 10", got, p.MaxPollRecords(), before)
	}
	// The refused consumer is reopened by Run after a backoff, shown as
	// retrying until its reopen has returned.
	waitFor(t, "both consumers back, running and not degraded", func() bool {
		st := p.Status()
		return len(st.Consumers) == 2 && st.State == StateRunning && !st.Degraded
	})
	src.mu.Lock()
	with := slices.Clone(src.openedWith)
	src.mu.Unlock()
	// Opened: 2 at start, the first with the change, then both again
	// with the previous properties.
	if len(with) != 5 || with[2].FetchMinBytes != 999 || with[3].FetchMinBytes != 0 || with[4].FetchMinBytes != 0 {
		t.Fatalf("readers opened with %+v; want the last two with the previous properties", with)
	}
	waitFor(t, "every record acked", func() bool { d, _ := src.ackedCount(); return d == n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAConsumerThatCannotBeReopenedIsRetryingThenFails: when the consumer
// cannot be reopened even with the previous properties (the broker went
// away), status says degraded and what is retried, and after
// max_retry_time the pipeline stops with the reason, never "running"
// with a consumer gone.
func TestAConsumerThatCannotBeReopenedIsRetryingThenFails(t *testing.T) {
	src := newPropSource(1000000, map[string]any{"max.poll.records": 10})
	var down atomic.Bool
	src.refuse = func(string, config.ConsumerProperties) error {
		if down.Load() {
			return errors.New("connecting to Kafka brokers: connection refused")
		}
		return nil
	}
	sink := &memSink{}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, MaxPollRecords: 10, BatchRecords: 100, Linger: time.Millisecond, MaxRetryTime: 2 * time.Second, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "records written", func() bool { return sink.count() > 100 })
	down.Store(true)
	if err := p.Reconfigure(ctx, map[string]any{"max.poll.records": 20}); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("Reconfigure = %v, want ErrRolledBack", err)
	}
	waitFor(t, "status degraded, retrying the reopen", func() bool {
		st := p.Status()
		return st.Degraded && len(st.Retrying) == 1 && st.Retrying[0].What == "reopen" && strings.Contains(st.Retrying[0].LastError, "connection refused")
	})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "reopening consumer") || !strings.Contains(err.Error(), "max_retry_time") {
			t.Fatalf("Run = %v, want it stopped reopening the consumer after max_retry_time", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pipeline kept running without its consumer past max_retry_time")
	}
	if st := p.Status(); st.State != StateFailed {
		t.Fatalf("state %s, want failed", st.State)
	}
}

// slowSecondOpen holds the pipeline's second OpenReader until release is
// closed: Run is still starting its consumers while the first one runs.
type slowSecondOpen struct {
	*propSource
	opens   atomic.Int32
	release chan struct{}
}

func (s *slowSecondOpen) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	if s.opens.Add(1) == 2 {
		<-s.release
	}
	return s.propSource.OpenReader(ctx, member)
}

// TestReconfigureWhileStartingRestartsTheConsumersAlreadyOpen: a change
// that came while Run was still opening consumers returned success and
// left the consumers opened before it on the old properties.
func TestReconfigureWhileStartingRestartsTheConsumersAlreadyOpen(t *testing.T) {
	src := &slowSecondOpen{propSource: newPropSource(1000000, map[string]any{"max.poll.records": 10}), release: make(chan struct{})}
	sink := &memSink{}
	p, _ := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, MaxPollRecords: 10, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the first consumer writing", func() bool { return sink.count() > 100 })
	if st := p.Status().State; st != StateStarting {
		t.Fatalf("state %s, want starting (the second consumer is held)", st)
	}
	reconfigured := make(chan error, 1)
	go func() { reconfigured <- p.Reconfigure(ctx, map[string]any{"max.poll.records": 20}) }()
	waitFor(t, "the first consumer reopened", func() bool { return len(src.openedIDs()) == 2 })
	close(src.release)
	if err := <-reconfigured; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return p.Status().State == StateRunning })
	src.mu.Lock()
	with := slices.Clone(src.openedWith)
	src.mu.Unlock()
	if len(with) != 3 || with[0].MaxPollRecords != 10 || with[1].MaxPollRecords != 20 || with[2].MaxPollRecords != 20 {
		t.Fatalf("readers opened with %+v; want the first one again, then the second, both with max.poll.records 20", with)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
