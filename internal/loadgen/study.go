package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// StudyRun is one run of a connection study: the same load over a
// number of producer connections, and what the brokers saw meanwhile.
type StudyRun struct {
	Connections int
	Result      ProduceResult
	Samples     []MonitorSample
}

// Steady figures of a run: medians over the samples with rates, the
// first and last left out (they hold the ramp up and the drain).
func (r StudyRun) steady(figure func(BrokerSample) float64) float64 {
	var vs []float64
	for _, s := range r.Samples {
		if t := s.BrokerTotal(); t.HasRate {
			vs = append(vs, figure(t))
		}
	}
	if len(vs) > 2 {
		vs = vs[1 : len(vs)-1]
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

// SteadyRequests, PeakConnections and SteadyIngress are what the study
// compares across runs: broker requests/s, open connections and
// ingress bytes/s.
func (r StudyRun) SteadyRequests() float64 {
	return r.steady(func(b BrokerSample) float64 { return b.RequestsTotal })
}

func (r StudyRun) PeakConnections() float64 {
	peak := 0.0
	for _, s := range r.Samples {
		peak = max(peak, s.BrokerTotal().Connections)
	}
	return peak
}

func (r StudyRun) SteadyIngress() float64 {
	return r.steady(func(b BrokerSample) float64 { return b.IngressBytes })
}

// ConnectionStudy repeats the published case study: the load of o (its
// total rate, size and duration) once per entry of connections, one
// after the other, while a monitor reads the brokers' own figures from
// metricsURLs every interval. Each run's monitor starts before its load
// and stops a little after, so the figures cover the whole run.
func ConnectionStudy(ctx context.Context, o ProduceOptions, connections []int, mon MonitorOptions) ([]StudyRun, error) {
	if len(connections) == 0 {
		return nil, errors.New("--study-connections: give the connection counts to compare, e.g. 1,5,20")
	}
	if len(mon.MetricsURLs) == 0 && mon.GCPProject == "" {
		return nil, errors.New("--study-connections: needs --metrics-url, the brokers' metrics to compare")
	}
	if mon.Interval == 0 {
		mon.Interval = time.Second
	}
	mon.Brokers, mon.ClientOptions, mon.Topics = o.Brokers, o.ClientOptions, []string{o.Topic}
	var runs []StudyRun
	for i, n := range connections {
		if n < 1 {
			return runs, fmt.Errorf("--study-connections: %d: want at least 1", n)
		}
		run := o
		run.Connections = n
		// The topic exists after the first run; the others find it.
		run.CreateTopic = o.CreateTopic && i == 0
		monCtx, stopMonitor := context.WithCancel(ctx)
		done := make(chan struct{})
		var samples []MonitorSample
		var monErr error
		// sampled is told of every sample the monitor takes.
		sampled := make(chan struct{}, 1)
		m := mon
		m.OnSample = func(MonitorSample) {
			select {
			case sampled <- struct{}{}:
			default:
			}
		}
		go func() {
			defer close(done)
			samples, monErr = Monitor(monCtx, m)
		}()
		// waitSamples waits for n samples taken from now on, so that what
		// happened before now is in the rates, however slow the machine.
		waitSamples := func(n int) {
			select {
			case <-sampled:
			default:
			}
			for range n {
				select {
				case <-sampled:
				case <-done:
					return
				case <-ctx.Done():
					return
				}
			}
		}
		// The load starts once the monitor has its first reading, which
		// the rates of the second one are taken against.
		waitSamples(1)
		res, err := Produce(ctx, run)
		if err == nil {
			// The sample under way may have begun before the last
			// records; the one after it has them all.
			waitSamples(2)
		}
		stopMonitor()
		<-done
		if err != nil {
			return runs, fmt.Errorf("running the load over %d connection(s): %w", n, err)
		}
		if monErr != nil {
			return runs, fmt.Errorf("monitoring the load over %d connection(s): %w", n, monErr)
		}
		runs = append(runs, StudyRun{Connections: n, Result: res, Samples: samples})
	}
	return runs, nil
}

// StudyReport draws a connection study: each run's broker requests/s,
// open connections and ingress over its own time, one line per run, and
// the steady figures as facts.
func StudyReport(runs []StudyRun) Report {
	var requests, conns, ingress []Series
	facts := [][2]string{}
	if len(runs) > 0 {
		o := runs[0].Result.Options
		facts = append(facts, [2]string{"brokers", strings.Join(o.Brokers, ",")},
			[2]string{"load of every run", describeLoad(o)})
	}
	for _, r := range runs {
		name := fmt.Sprintf("%d connection(s)", r.Connections)
		rq, cn, in := Series{Name: name}, Series{Name: name}, Series{Name: name}
		for _, s := range r.Samples {
			t := s.BrokerTotal()
			x := s.Elapsed.Seconds()
			cn.X, cn.Points = append(cn.X, x), append(cn.Points, t.Connections)
			if t.HasRate {
				rq.X, rq.Points = append(rq.X, x), append(rq.Points, t.RequestsTotal)
				in.X, in.Points = append(in.X, x), append(in.Points, t.IngressBytes)
			}
		}
		requests, conns, ingress = append(requests, rq), append(conns, cn), append(ingress, in)
		facts = append(facts, [2]string{name, fmt.Sprintf("%.0f broker requests/s, %.0f open connections at most, %.2f MB/s ingress, %d records acked, produce p99 %v",
			r.SteadyRequests(), r.PeakConnections(), r.SteadyIngress()/1e6, r.Result.Records, RoundLatency(r.Result.P99))})
	}
	return Report{
		Title:     "sluice loadtest: many producers vs one at the same rate",
		Generated: time.Now(),
		Facts:     facts,
		Charts: []Chart{
			{Title: "Broker requests per second (all types), by run", Unit: "requests/s", Series: requests},
			{Title: "Open client connections, by run", Unit: "connections", Series: conns},
			{Title: "Broker ingress (record bytes produced), by run", Unit: "bytes/s", Series: ingress},
		},
	}
}
