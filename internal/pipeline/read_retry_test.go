package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// scriptedSource serves memSource's records, but each Read of its readers
// first asks fail (with the count of Reads so far, from 1): an error is
// returned after waiting gap, as a client reports failures spaced out;
// nil lets the Read through. It names itself, and tells its health when
// health is set.
type scriptedSource struct {
	*memSource
	fail   func(read int64) error
	gap    time.Duration
	reads  atomic.Int64
	failed atomic.Int64 // Reads that returned fail's error
	health *connector.SourceHealth
}

func (s *scriptedSource) OpenReader(ctx context.Context, member string) (connector.Reader, error) {
	r, _ := s.memSource.OpenReader(ctx, member)
	return &scriptedReader{Reader: r, s: s}, nil
}

func (s *scriptedSource) Describe() string {
	return "Pub/Sub subscription projects/p/subscriptions/orders"
}

// healthScriptedSource is a scriptedSource that tells its health.
type healthScriptedSource struct{ *scriptedSource }

func (s healthScriptedSource) SourceHealth() connector.SourceHealth { return *s.health }

type scriptedReader struct {
	connector.Reader
	s *scriptedSource
}

func (r *scriptedReader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	err := r.s.fail(r.s.reads.Add(1))
	if err == nil {
		return r.Reader.Read(ctx, max)
	}
	if r.s.gap == 0 {
		r.s.failed.Add(1)
		return nil, err
	}
	select {
	case <-time.After(r.s.gap):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.s.failed.Add(1)
	return nil, err
}

var errSubscriptionGone = errors.New("subscriber stopped: rpc error: code = NotFound desc = Subscription does not exist")

// readRetries returns a func that tells how much
// sluice_retries_total{pipeline=name,stage="read"} has grown since (the
// registry outlives a test, and -count runs it again).
func readRetries(t *testing.T, name string) func() int {
	t.Helper()
	value := func() int {
		var m dto.Metric
		if err := metrics.Retries.WithLabelValues(name, "read").Write(&m); err != nil {
			t.Fatal(err)
		}
		return int(m.GetCounter().GetValue())
	}
	before := value()
	return func() int { return value() - before }
}

// A source whose Read failed with a transient error was retried forever
// (a deleted Pub/Sub subscription, a Kafka cluster gone for good): status
// said running, nothing counted a retry, nothing ever stopped. Now status
// says what is retried and why, the retries are counted by stage, and
// after max_retry_time the pipeline stops naming the source and the error.
func TestSourceReadFailingPastMaxRetryTimeStopsThePipeline(t *testing.T) {
	const name = "read-fails-for-good"
	src := &scriptedSource{memSource: newMemSource(0, plain), fail: func(int64) error { return errSubscriptionGone }}
	p, err := New(Options{Name: name, Source: src, Sink: &memSink{}, MaxRetryTime: time.Second, ShutdownTimeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	retries := readRetries(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()

	var retrying *RetryStatus
	var runErr error
wait:
	for deadline := time.After(30 * time.Second); ; {
		select {
		case runErr = <-done:
			break wait
		case <-deadline:
			t.Fatalf("the pipeline still runs %v after its source began failing (max_retry_time 1s); status %+v", time.Since(start).Round(time.Second), p.Status())
		case <-time.After(5 * time.Millisecond):
		}
		if st := p.Status(); retrying == nil && st.State == StateRunning && len(st.Retrying) == 1 {
			if !st.Degraded {
				t.Fatalf("status retrying %+v but not degraded", st.Retrying)
			}
			retrying = &st.Retrying[0]
		}
	}
	if retrying == nil || retrying.What != "read" || !strings.Contains(retrying.LastError, "NotFound") {
		t.Fatalf("status while the source failed: retrying %+v; want read with the source's error", retrying)
	}
	for _, want := range []string{"consumer " + name + "-1: reading from Pub/Sub subscription projects/p/subscriptions/orders: still failing after",
		"(max_retry_time 1s)", "code = NotFound"} {
		if runErr == nil || !strings.Contains(runErr.Error(), want) {
			t.Fatalf("Run returned %v; want it to say %q", runErr, want)
		}
	}
	st := p.Status()
	if st.State != StateFailed || !strings.Contains(st.Error, "NotFound") || len(st.Retrying) != 0 {
		t.Fatalf("status %s %q, retrying %+v; want failed with the source's error and nothing retrying", st.State, st.Error, st.Retrying)
	}
	// Every failure but the last, which stopped the pipeline, was a retry.
	if got, want := retries(), int(src.failed.Load())-1; got != want || got == 0 {
		t.Fatalf("sluice_retries_total{stage=read} %d, want %d (Reads failed: %d)", got, want, src.failed.Load())
	}
}

// A run of failed Reads ends at a Read that succeeds: failures that each
// heal soon never add up to max_retry_time, however long they go on.
func TestSourceReadFailuresClearedByASuccessfulRead(t *testing.T) {
	const name = "read-fails-and-heals"
	// 5 times: 3 failed Reads (some 0.35-0.7 s of backoff) and one that
	// reads: 5 s of mostly failures against a max_retry_time of 1 s.
	src := &scriptedSource{memSource: newMemSource(100, plain), fail: func(n int64) error {
		if n <= 20 && n%4 != 0 {
			return errors.New("broker unreachable")
		}
		return nil
	}}
	sink := &memSink{}
	p, err := New(Options{Name: name, Source: src, Sink: sink, BatchRecords: 10, Linger: time.Millisecond, MaxRetryTime: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	retries := readRetries(t, name)
	sawRetrying := false
	err = runUntil(t, p, "every record acked after the failures", func() bool {
		st := p.Status()
		sawRetrying = sawRetrying || (len(st.Retrying) == 1 && st.Retrying[0].What == "read" && st.Degraded)
		d, _ := src.ackedCount()
		return d == 100 && src.reads.Load() > 20 && len(st.Retrying) == 0 && !st.Degraded
	})
	if err != nil {
		t.Fatalf("the pipeline stopped with %v; each run of failures was ended by a successful read", err)
	}
	if !sawRetrying {
		t.Fatal("status never said the source read was retried")
	}
	if got := retries(); got != 15 {
		t.Fatalf("sluice_retries_total{stage=read} %d, want the 15 failed reads", got)
	}
	if sink.count() != 100 {
		t.Fatalf("%d records written, want 100", sink.count())
	}
}

// Without a successful Read, a run still ends after readQuiet without a
// failure, or after readHealthy without one while the source says it is
// healthy: a client that reports a network error now and then while it
// reads fine is not stopped. A source that says it is unreachable is.
func TestSourceReadFailuresClearedByTimeWhileHealthy(t *testing.T) {
	healthy := connector.SourceHealth{State: connector.SourceHealthy}
	unreachable := connector.SourceHealth{State: connector.SourceUnreachable, Since: time.Now(), Errors: 3, LastError: "dial tcp: connection refused"}
	for _, tc := range []struct {
		name   string
		health *connector.SourceHealth // nil: the source cannot tell
		quiet  time.Duration
		stops  bool
	}{
		{"healthy", &healthy, time.Hour, false},
		{"unreachable", &unreachable, time.Hour, true},
		// Quiet between failures is no healing while the source says
		// its servers are unreachable.
		{"unreachable, quiet", &unreachable, 150 * time.Millisecond, true},
		{"no health, quiet", nil, 150 * time.Millisecond, false},
		{"no health, never quiet", nil, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "read-fails-now-and-then-" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), ",", "")
			// 5 failures 600 ms apart, and never a successful Read
			// between them: 3 s against a max_retry_time of 1 s.
			ss := &scriptedSource{memSource: newMemSource(10, plain), gap: 600 * time.Millisecond, health: tc.health, fail: func(n int64) error {
				if n <= 5 {
					return errors.New("read tcp 127.0.0.1:9092: connection reset by peer")
				}
				return nil
			}}
			var src connector.Source = ss
			if tc.health != nil {
				src = healthScriptedSource{ss}
			}
			p, err := New(Options{Name: name, Source: src, Sink: &memSink{}, BatchRecords: 10, Linger: time.Millisecond,
				MaxRetryTime: time.Second, ShutdownTimeout: time.Second, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			p.readQuiet, p.readHealthy, p.readSweep = tc.quiet, 150*time.Millisecond, 10*time.Millisecond
			retries := readRetries(t, name)
			err = runUntil(t, p, "every record acked after the failures", func() bool {
				d, _ := ss.ackedCount()
				return d == 10 && len(p.Status().Retrying) == 0
			})
			switch {
			case tc.stops && (err == nil || !strings.Contains(err.Error(), "connection reset by peer") || !strings.Contains(err.Error(), "max_retry_time 1s")):
				t.Fatalf("Run returned %v; want the failures to stop the pipeline after max_retry_time", err)
			case !tc.stops && err != nil:
				t.Fatalf("the pipeline stopped with %v; failures %v apart should not add up", err, ss.gap)
			case !tc.stops && retries() != 5:
				t.Fatalf("sluice_retries_total{stage=read} %d, want the 5 failed reads", retries())
			}
		})
	}
}

// A Permanent source error stops the pipeline at once with its own error,
// naming the source, whatever transient failures came before it and
// however long max_retry_time is; the transient ones were retries.
func TestPermanentSourceErrorAfterTransientOnesStopsAtOnce(t *testing.T) {
	const name = "read-fails-then-fenced"
	src := &scriptedSource{memSource: newMemSource(0, plain), fail: func(n int64) error {
		if n <= 2 {
			return errors.New("broker unreachable")
		}
		return connector.Permanent(errors.New("FENCED_INSTANCE_ID: another consumer joined with group.instance.id host-a-t-1"))
	}}
	p, err := New(Options{Name: name, Source: src, Sink: &memSink{}, MaxRetryTime: time.Hour, ShutdownTimeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	retries := readRetries(t, name)
	err = runToEnd(t, p)
	if err == nil || !strings.Contains(err.Error(), "consumer "+name+"-1: reading from Pub/Sub subscription projects/p/subscriptions/orders: FENCED_INSTANCE_ID") || strings.Contains(err.Error(), "still failing") {
		t.Fatalf("Run returned %v; want the permanent error as it is", err)
	}
	if got := retries(); got != 2 {
		t.Fatalf("sluice_retries_total{stage=read} %d, want the 2 transient failures", got)
	}
	if st := p.Status(); st.State != StateFailed || len(st.Retrying) != 0 {
		t.Fatalf("status %s, retrying %+v; want failed, nothing retrying", st.State, st.Retrying)
	}
}
