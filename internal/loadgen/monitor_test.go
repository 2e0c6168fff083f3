package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// liveMonitor runs Monitor in the background and lets the test read the
// samples taken so far.
type liveMonitor struct {
	mu      sync.Mutex
	samples []MonitorSample
	done    chan struct{}
	result  []MonitorSample
	err     error
}

func startMonitor(t *testing.T, ctx context.Context, o MonitorOptions) *liveMonitor {
	t.Helper()
	m := &liveMonitor{done: make(chan struct{})}
	o.OnSample = func(s MonitorSample) {
		m.mu.Lock()
		m.samples = append(m.samples, s)
		m.mu.Unlock()
	}
	go func() {
		defer close(m.done)
		m.result, m.err = Monitor(ctx, o)
	}()
	return m
}

// waitFor polls the samples until ok accepts the latest one.
func (m *liveMonitor) waitFor(t *testing.T, what string, ok func(MonitorSample) bool) MonitorSample {
	t.Helper()
	samples := m.waitForSamples(t, what, func(s []MonitorSample) bool { return len(s) > 0 && ok(s[len(s)-1]) })
	return samples[len(samples)-1]
}

// waitForSamples polls the samples taken so far until ok accepts them,
// and returns them. The deadline is generous: under -race on a loaded
// machine one sample (a few admin requests) may take seconds.
func (m *liveMonitor) waitForSamples(t *testing.T, what string, ok func([]MonitorSample) bool) []MonitorSample {
	t.Helper()
	const wait = 30 * time.Second
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m.mu.Lock()
		samples := slices.Clone(m.samples)
		m.mu.Unlock()
		if ok(samples) {
			return samples
		}
	}
	t.Fatalf("no sample showed %s in %v", what, wait)
	return nil
}

// monitorSamples runs Monitor until it has taken n samples and returns
// every sample it took. A run of a fixed Duration would not do: on a
// loaded machine the first sample alone (a new client's first requests)
// may take longer than the whole run, which then returns none.
func monitorSamples(t *testing.T, o MonitorOptions, n int) []MonitorSample {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	m := startMonitor(t, ctx, o)
	m.waitForSamples(t, fmt.Sprintf("%d samples", n), func(s []MonitorSample) bool { return len(s) >= n })
	stop()
	<-m.done
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.result
}

func TestMonitorSeesRateWhileLoadRunsAndLagGrowUntilTheGroupConsumes(t *testing.T) {
	brokers := startBroker(t, kfake.SeedTopics(3, "orders"))
	adm := adminClient(t, brokers)
	// Group "billing" has committed offset 0 on every partition and no
	// member: it exists but does not consume.
	var start kadm.Offsets
	for p := range int32(3) {
		start.AddOffset("orders", p, 0, -1)
	}
	if _, err := adm.CommitOffsets(context.Background(), "billing", start); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	mon := startMonitor(t, ctx, MonitorOptions{Brokers: brokers, Topics: []string{"orders"},
		Groups: []string{"billing"}, Interval: 200 * time.Millisecond})

	// The load runs for at least 2.5 s and until the monitor has sampled
	// it 5 times (a loaded machine may sample less often than asked);
	// ending it early still waits for the records in flight.
	loadCtx, endLoad := context.WithCancel(ctx)
	defer endLoad()
	type produced struct {
		res ProduceResult
		err error
	}
	load := make(chan produced, 1)
	loadStarted := time.Now()
	go func() {
		res, err := Produce(loadCtx, ProduceOptions{Brokers: brokers, Topic: "orders",
			Profile: Profile{Rate: 2000}, Duration: time.Minute, Keys: 10})
		load <- produced{res, err}
	}()
	mon.waitForSamples(t, "5 samples over 2.5 s of load", func(samples []MonitorSample) bool {
		var during []MonitorSample
		for _, s := range samples {
			if s.At.After(loadStarted) {
				during = append(during, s)
			}
		}
		return len(during) >= 5 && during[len(during)-1].At.Sub(loadStarted) >= 2500*time.Millisecond
	})
	endLoad()
	p := <-load
	res, err := p.res, p.err
	if err != nil || res.Records == 0 || res.Errors != 0 {
		t.Fatalf("producing: %d records, %d errors, %v", res.Records, res.Errors, err)
	}
	loadEnded := time.Now()
	// Once the load is over, the lag is every record produced.
	afterLoad := mon.waitFor(t, "the lag of the whole load", func(s MonitorSample) bool { return s.At.After(loadEnded) })
	if g, _ := afterLoad.Group("billing"); g.Lag != res.Records || g.LagByTopic["orders"] != res.Records {
		t.Fatalf("lag after the load %+v, want %d", g, res.Records)
	}
	// Lag in time: the oldest unconsumed record was produced during the load.
	if g, _ := afterLoad.Group("billing"); !g.HasLagSeconds || g.LagSeconds < afterLoad.At.Sub(loadEnded).Seconds() ||
		g.LagSeconds > afterLoad.At.Sub(loadStarted).Seconds() {
		t.Fatalf("lag age %.2f s (known %v); the oldest waiting record was produced between %.2f s and %.2f s before the sample",
			g.LagSeconds, g.HasLagSeconds, afterLoad.At.Sub(loadEnded).Seconds(), afterLoad.At.Sub(loadStarted).Seconds())
	}

	// Now the group consumes everything and commits.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("billing"),
		kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	readCtx, cancelRead := context.WithTimeout(ctx, 30*time.Second)
	defer cancelRead()
	for read := int64(0); read < res.Records && readCtx.Err() == nil; {
		read += int64(cl.PollFetches(readCtx).NumRecords())
	}
	if err := cl.CommitUncommittedOffsets(readCtx); err != nil {
		t.Fatal(err)
	}
	mon.waitFor(t, "the lag back at 0", func(s MonitorSample) bool {
		g, ok := s.Group("billing")
		return ok && g.Err == "" && g.Lag == 0 && !g.HasLagSeconds
	})
	stop()
	<-mon.done
	if mon.err != nil {
		t.Fatal(mon.err)
	}

	var maxRate float64
	var lags []int64
	for _, s := range mon.result {
		if s.Err != "" {
			t.Errorf("sample at %v: %s", s.Elapsed, s.Err)
		}
		if tp, ok := s.Topic("orders"); ok && tp.HasRate {
			maxRate = max(maxRate, tp.Rate)
		}
		if g, ok := s.Group("billing"); ok && s.At.Before(loadEnded) {
			lags = append(lags, g.Lag)
		}
	}
	// 2000 records/s; samples of 200 ms on a busy machine see it
	// unevenly, but never 0 and never wildly more.
	if maxRate < 1000 || maxRate > 6000 {
		t.Errorf("highest sampled rate %.0f records/s while producing 2000/s", maxRate)
	}
	// The lag grows while the load runs and the group does not consume.
	if len(lags) < 5 {
		t.Fatalf("only %d samples during the load: %v", len(lags), lags)
	}
	for i := 1; i < len(lags); i++ {
		if lags[i] < lags[i-1] {
			t.Errorf("lag went down while nobody consumed: %v", lags)
			break
		}
	}
	if lags[len(lags)-1] < lags[0]+2000 {
		t.Errorf("lag did not grow with the load: %v", lags)
	}

	var page strings.Builder
	if err := WriteReport(&page, MonitorReport(brokers, mon.result)); err != nil {
		t.Fatal(err)
	}
	charts := reportData(t, page.String())
	if len(charts) != 2 || len(charts[0].Series) != 1 || charts[0].Series[0].Name != "orders" ||
		len(charts[1].Series) != 1 || charts[1].Series[0].Name != "billing" {
		t.Fatalf("report charts %+v, want the rate of orders and the lag of billing", charts)
	}
	lagSeries := charts[1].Series[0].Points
	if peak := slices.Max(lagSeries); peak != float64(res.Records) || lagSeries[len(lagSeries)-1] != 0 {
		t.Errorf("lag in the report peaks at %v and ends at %v, want %d and 0", peak, lagSeries[len(lagSeries)-1], res.Records)
	}
}

func TestMonitorFindsTopicsAndGroupsItWasNotToldAbout(t *testing.T) {
	brokers := startBroker(t, kfake.SeedTopics(1, "a"), kfake.SeedTopics(2, "b"))
	var offsets kadm.Offsets
	offsets.AddOffset("b", 1, 0, -1)
	if _, err := adminClient(t, brokers).CommitOffsets(context.Background(), "g1", offsets); err != nil {
		t.Fatal(err)
	}
	// Two samples: the last has rates.
	samples := monitorSamples(t, MonitorOptions{Brokers: brokers, Interval: 100 * time.Millisecond}, 2)
	last := samples[len(samples)-1]
	var topics []string
	for _, tp := range last.Topics {
		topics = append(topics, tp.Topic)
	}
	if strings.Join(topics, ",") != "a,b" {
		t.Errorf("topics %v, want a,b without internal topics", topics)
	}
	if g, ok := last.Group("g1"); !ok || g.Err != "" || g.Lag != 0 {
		t.Errorf("group g1: %+v, %v", g, ok)
	}
	if tp, _ := last.Topic("b"); !tp.HasRate || tp.Rate != 0 || tp.Partitions != 2 {
		t.Errorf("topic b: %+v, want a zero rate over 2 partitions", tp)
	}

	// A group named before its consumers start is missing, not an error.
	samples = monitorSamples(t, MonitorOptions{Brokers: brokers, Groups: []string{"not-yet"}, Interval: 100 * time.Millisecond}, 1)
	if g, ok := samples[0].Group("not-yet"); !ok || !g.Missing || g.Err != "" || samples[0].Err != "" {
		t.Errorf("group not-yet: %+v (sample error %q), want missing without an error", g, samples[0].Err)
	}
}

// Duration ends a run on its own; the samples it took are returned.
func TestMonitorStopsAfterItsDuration(t *testing.T) {
	brokers := startBroker(t, kfake.SeedTopics(1, "a"))
	// Far longer than the run: if the run outlives it, Duration was not
	// what ended it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	samples, err := Monitor(ctx, MonitorOptions{Brokers: brokers, Interval: 100 * time.Millisecond, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Monitor returned only when its context ended, not after its Duration")
	}
	for _, s := range samples {
		if s.Err != "" {
			t.Errorf("sample at %v: %s", s.Elapsed, s.Err)
		}
	}
}
