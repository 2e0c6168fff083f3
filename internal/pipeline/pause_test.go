package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/internal/metrics"
)

// stateGauge is the pipeline state gauge's value for state.
func stateGauge(t *testing.T, pipeline string, state State) float64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.PipelineState.WithLabelValues(pipeline, string(state)).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// assertState checks the status and the state gauge agree on want.
func assertState(t *testing.T, p *Pipeline, want State) {
	t.Helper()
	if got := p.Status().State; got != want {
		t.Fatalf("state %s, want %s", got, want)
	}
	for _, st := range []State{StateStarting, StateRunning, StatePaused} {
		v := 0.0
		if st == want {
			v = 1
		}
		if got := stateGauge(t, p.Name(), st); got != v {
			t.Fatalf("state %s: gauge {state=%q} is %v, want %v", want, st, got, v)
		}
	}
}

// Regression: a pipeline paused while it was still opening its consumers
// said running once they were open, though nothing was read, and the
// state gauge never followed a pause or a resume at all.
func TestPauseWhileStartingSaysPaused(t *testing.T) {
	src := &slowSecondOpen{propSource: newPropSource(100000, map[string]any{"max.poll.records": 10}), release: make(chan struct{})}
	sink := &memSink{}
	p, err := New(Options{Name: "pause-while-starting", Source: src, Sink: sink, Consumers: 2, MaxPollRecords: 10, BatchRecords: 100,
		Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the first consumer writing", func() bool { return sink.count() > 100 })
	if st := p.Status().State; st != StateStarting {
		t.Fatalf("state %s, want starting (the second consumer is held)", st)
	}

	p.PauseOperator()
	close(src.release)
	waitFor(t, "the consumers opened", func() bool { return p.Status().State != StateStarting })
	assertState(t, p, StatePaused)
	waitFor(t, "both consumers parked at the pause gate", func() bool { return len(p.Status().Consumers) == 2 && p.drained() })
	held := sink.count()
	time.Sleep(50 * time.Millisecond) // a window for writes that must not happen
	if sink.count() != held {
		t.Fatalf("%d records written while paused", sink.count()-held)
	}
	assertState(t, p, StatePaused)

	p.ResumeOperator()
	assertState(t, p, StateRunning)
	waitFor(t, "writes after resume", func() bool { return sink.count() > held })
	p.PauseOperator()
	assertState(t, p, StatePaused)
	p.ResumeOperator()
	assertState(t, p, StateRunning)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Regression: a consumer still parked at the gate of the pause just
// resumed counted as drained for the next pause, so PauseAndDrain right
// after a resume (a merge after a merge) could return while that
// consumer woke, read and wrote.
func TestPauseAndDrainRightAfterAResumeWaitsForEveryConsumer(t *testing.T) {
	src := newMemSource(200_000, plain)
	sink := &memSink{}
	var drained atomic.Bool
	var writesWhileDrained atomic.Int32
	sink.onWrite = func() {
		if drained.Load() {
			writesWhileDrained.Add(1)
		}
	}
	p, err := New(Options{Name: "t", Source: src, Sink: sink, Consumers: 2, BatchRecords: 100, Linger: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitRunning(t, p)
	for i := range 50 {
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		resume, err := p.PauseAndDrain(dctx)
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
		drained.Store(true)
		in, _ := p.limiter.usage()
		time.Sleep(5 * time.Millisecond) // a window for writes that must not happen
		drained.Store(false)
		if n := writesWhileDrained.Load(); n > 0 || in != 0 {
			t.Fatalf("pause %d: drained with %d records in flight, then %d writes", i, in, n)
		}
		resume()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
