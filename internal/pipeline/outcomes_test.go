package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// outcomeSink answers each write with a mix of outcomes, the way real
// sinks do at the edges: on its first write it makes the first third of
// the batch durable, rejects the record at offset bad, leaves the rest not
// written (transiently), and releases the records of partition 2 (as
// after a rebalance); later writes make everything durable.
type outcomeSink struct {
	bad int64

	mu      sync.Mutex
	calls   int
	written map[int64]int // offset -> times made durable
}

func (s *outcomeSink) Write(_ context.Context, batch []*connector.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	be := &connector.BatchError{}
	for i, r := range batch {
		switch {
		case r.Offset == s.bad:
			be.Failed = append(be.Failed, &connector.RecordError{Record: r, Reason: "type", Err: errors.New("not a number")})
		case s.calls == 1 && r.Partition == 2:
			be.Released = append(be.Released, r)
		case s.calls == 1 && i >= len(batch)/3:
			be.NotWritten = append(be.NotWritten, r)
		default:
			s.written[r.Offset]++
		}
	}
	if len(be.NotWritten) > 0 {
		be.Cause = errors.New("connection reset")
	}
	if len(be.Failed)+len(be.NotWritten)+len(be.Released) == 0 {
		return nil
	}
	return be
}

func (s *outcomeSink) Close(context.Context) error { return nil }

// Regression: a sink that wrote part of a batch and rejected one record
// used to have the whole batch acked (the rest read as durable). Now the
// engine acks exactly the durable and routed records, writes only the
// not-written ones again, and counts released records as not written.
func TestPerRecordOutcomesAckOnlyWhatIsSettled(t *testing.T) {
	const n = 60
	src := newMemSource(n, plain)
	sink := &outcomeSink{bad: 7, written: map[int64]int{}}
	dlq := &memDLQ{}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 1, BatchRecords: n, OnError: OnErrorDLQ, DeadLetter: dlq, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, p, "every record acked", func() bool { d, _ := src.ackedCount(); return d == n }); err != nil {
		t.Fatal(err)
	}
	if _, total := src.ackedCount(); total != n {
		t.Fatalf("%d acks for %d records; each record must be acked once", total, n)
	}
	released := 0
	for off := int64(0); off < n; off++ {
		want := 1
		switch {
		case off == 7:
			want = 0
		case off%3 == 2:
			want, released = 0, released+1 // partition 2, released on the first write
		}
		if got := sink.written[off]; got != want {
			t.Errorf("offset %d written %d times, want %d", off, got, want)
		}
	}
	if len(dlq.records) != 1 || dlq.records[0].Offset != 7 {
		t.Fatalf("dead letters %v; want offset 7 alone", dlq.records)
	}
	st := p.Status()
	if want := int64(n - 1 - released); st.RecordsOut != want || st.DeadLettered != 1 {
		t.Fatalf("status: out %d, dead-lettered %d; want %d and 1 (released records are not written)", st.RecordsOut, st.DeadLettered, want)
	}
	if recs, bytes := p.limiter.usage(); recs != 0 || bytes != 0 {
		t.Fatalf("in flight after everything settled: %d records, %d bytes; want 0", recs, bytes)
	}
}

// With on_error: fail, records the sink made durable before the bad one
// are acked, the bad one and the ones after it are not.
func TestFailStopsAtTheRejectedRecordAndAcksOnlyWhatIsDurable(t *testing.T) {
	src := newMemSource(30, plain)
	sink := &outcomeSink{bad: 4, written: map[int64]int{}}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 1, BatchRecords: 30, OnError: OnErrorFail, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = runUntil(t, p, "failure", func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "t/1@4") {
		t.Fatalf("err = %v; want a failure naming record t/1@4", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for off := range src.acked {
		if sink.written[off] != 1 {
			t.Errorf("offset %d acked but not durable", off)
		}
	}
	if src.acked[4] != 0 {
		t.Fatal("the rejected record was acked under on_error: fail")
	}
}

// downSink never succeeds: a destination that does not heal.
type downSink struct{}

func (downSink) Write(context.Context, []*connector.Record) error {
	return errors.New("dial tcp 127.0.0.1:5432: connection refused")
}
func (downSink) Close(context.Context) error { return nil }

// Regression: a transient error that never heals was retried forever
// while status said "running". Now status says degraded and what is
// retried since when, and after max_retry_time the pipeline stops with
// the error.
func TestTransientErrorThatNeverHealsStopsAfterMaxRetryTime(t *testing.T) {
	src := newMemSource(10, plain)
	p, err := New(Options{Name: "t", Source: src, Sink: downSink{}, Consumers: 1, MaxRetryTime: 1500 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sawDegraded := false
	err = runUntil(t, p, "the pipeline to stop", func() bool {
		st := p.Status()
		if st.Degraded && len(st.Retrying) == 1 && st.Retrying[0].What == "write" &&
			strings.Contains(st.Retrying[0].LastError, "connection refused") && !st.Retrying[0].Since.IsZero() {
			sawDegraded = true
		}
		return false
	})
	if !sawDegraded {
		t.Error("status never said degraded, retrying the write since T, with the error")
	}
	if err == nil || !strings.Contains(err.Error(), "max_retry_time") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v; want a stop naming max_retry_time and the error", err)
	}
	if st := p.Status(); st.State != StateFailed || st.Degraded {
		t.Fatalf("after the stop: state %s, degraded %v; want failed and no retry left", st.State, st.Degraded)
	}
	if d, _ := src.ackedCount(); d != 0 {
		t.Fatalf("%d records acked; none was written", d)
	}
}
