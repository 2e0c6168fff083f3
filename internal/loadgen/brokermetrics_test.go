package loadgen

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/devstack"
)

// startDevStack runs the embedded stack of `sluice dev` on free ports.
func startDevStack(t *testing.T) *devstack.Stack {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// counted is what the broker counted over the samples: each rate times
// the interval it is over.
func counted(samples []MonitorSample, figure func(BrokerSample) float64) float64 {
	total := 0.0
	for _, s := range samples {
		if t := s.BrokerTotal(); t.HasRate {
			total += figure(t) * t.Interval.Seconds()
		}
	}
	return total
}

// The case the issue describes: 10,000 records of 1 KiB over 20 producer
// connections to the embedded broker; the monitor, reading the broker's
// own metrics endpoint, sees about 10 MB come in, at least 20
// connections while the producers are connected, the produce requests,
// and egress once a consumer reads the topic.
func TestMonitorShowsWhatTheEmbeddedBrokerSees(t *testing.T) {
	stack := startDevStack(t)
	// Created before the monitor starts: a topic created later shows
	// only once the admin client's metadata (up to 5 s old) knows it.
	if _, err := adminClient(t, stack.Brokers).CreateTopic(context.Background(), 6, 1, nil, "load"); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var seenConnections float64
	mon := startMonitor(t, ctx, MonitorOptions{Brokers: stack.Brokers, Topics: []string{"load"},
		Interval: 200 * time.Millisecond, MetricsURLs: []string{stack.MetricsURL}})
	mon.waitFor(t, "a first scrape of the broker metrics", func(s MonitorSample) bool { return len(s.Brokers) == 1 })

	const records, size = 10000, 1024
	res, err := Produce(ctx, ProduceOptions{Brokers: stack.Brokers, Topic: "load",
		Records: records, Size: size, Connections: 20, Profile: Profile{Rate: 5000},
		OnSample: func(ProduceSample) {}})
	if err != nil || res.Records != records || res.Errors != 0 {
		t.Fatalf("producing: %d acked, %d errors, %v", res.Records, res.Errors, err)
	}
	produced := time.Now()
	mon.waitFor(t, "a sample after the load", func(s MonitorSample) bool { return s.At.After(produced) })

	consumeAll(t, stack.Brokers, "load", records)
	consumed := time.Now()
	mon.waitFor(t, "a sample after the consumer", func(s MonitorSample) bool { return s.At.After(consumed) })
	stop()
	<-mon.done
	if mon.err != nil {
		t.Fatal(mon.err)
	}

	var produceRequests, peakLoad float64
	for _, s := range mon.result {
		// A starved machine (CI under -race) may time a scrape out; the
		// next one's rates span the gap, so the counts below still hold.
		if s.Err != "" && !strings.Contains(s.Err, "deadline exceeded") {
			t.Errorf("sample at %v: %s", s.Elapsed, s.Err)
		}
		tot := s.BrokerTotal()
		seenConnections = max(seenConnections, tot.Connections)
		if tot.HasLoad {
			if tot.Load < 0 || tot.Load > 1 {
				t.Errorf("load %v is not a ratio", tot.Load)
			}
			peakLoad = max(peakLoad, tot.Load)
		}
		produceRequests += tot.Requests["Produce"] * tot.Interval.Seconds()
	}
	in := counted(mon.result, func(b BrokerSample) float64 { return b.IngressBytes })
	// The topic's own bytes, as the broker counts them, are all of it.
	var topicBytes float64
	for _, s := range mon.result {
		if tp, ok := s.Topic("load"); ok && tp.HasBytes {
			topicBytes += tp.BytesRate * s.BrokerTotal().Interval.Seconds()
		}
	}
	if math.Abs(topicBytes-in) > 1 {
		t.Errorf("bytes of topic load %.0f, broker ingress %.0f", topicBytes, in)
	}
	out := counted(mon.result, func(b BrokerSample) float64 { return b.EgressBytes })
	t.Logf("broker saw: ingress %.0f B, egress %.0f B, peak %.0f connections, %.0f produce requests, peak load %.2f",
		in, out, seenConnections, produceRequests, peakLoad)
	// Record batches carry the values plus a few bytes of framing per
	// record and per batch: at least the values, at most 10% more.
	if want := float64(records * size); in < want || in > want*1.1 {
		t.Errorf("ingress over the run %.0f bytes, want about %.0f", in, want)
	}
	if seenConnections < 20 {
		t.Errorf("at most %.0f connections seen while 20 producers were connected", seenConnections)
	}
	if produceRequests < 20 {
		t.Errorf("%.0f produce requests counted for 10,000 records over 20 connections", produceRequests)
	}
	if out < float64(records*size) {
		t.Errorf("egress %.0f bytes after a consumer read the %d-byte topic", out, records*size)
	}
	// Once the producers are gone their connections close.
	last := mon.result[len(mon.result)-1].BrokerTotal()
	if last.Connections >= 20 {
		t.Errorf("%.0f connections still open after the producers closed", last.Connections)
	}
	// The broker's process worked while 10 MB went through it.
	if peakLoad <= 0 {
		t.Errorf("the load never rose above 0 during the run")
	}

	// The report charts the same figures.
	var page strings.Builder
	if err := WriteReport(&page, MonitorReport(stack.Brokers, mon.result)); err != nil {
		t.Fatal(err)
	}
	charts := map[string]Chart{}
	for _, c := range reportData(t, page.String()) {
		charts[c.Title] = c
	}
	ingress := charts["Broker ingress (record bytes produced)"]
	if len(ingress.Series) != 1 || ingress.Series[0].Name != "broker 0" || slices.Max(ingress.Series[0].Points) <= 0 {
		t.Errorf("ingress chart %+v", ingress)
	}
	if c := charts["Open client connections"]; len(c.Series) != 1 || slices.Max(c.Series[0].Points) != seenConnections {
		t.Errorf("connections chart %+v, want a peak of %v", c, seenConnections)
	}
	if c := charts["Broker requests per second by type (all brokers)"]; !slices.ContainsFunc(c.Series, func(s Series) bool { return s.Name == "Produce" }) {
		t.Errorf("requests chart %+v has no Produce series", c)
	}
	if c := charts["Broker load"]; len(c.Series) != 1 || len(c.Lines) != 1 || c.Lines[0].Name != "limit (100%)" || c.Lines[0].Y != 100 {
		t.Errorf("load chart %+v, want the broker and the 100%% line", c)
	}
}

// produceRequests is how many produce requests the dev broker counted.
func produceRequests(t *testing.T, stack *devstack.Stack) float64 {
	t.Helper()
	resp, err := http.Get(stack.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := parseMetrics(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, r := range rows {
		if r.name == "kafka_network_requestmetrics_requests_total" && r.label("request") == "Produce" {
			n += r.value
		}
	}
	return n
}

// The case study this reproduces: at the same total rate, many producers
// cost the broker many more requests than one. Loadtest's connections
// used to share one pacer that handed 10 ms chunks to whichever asked, so
// 10 connections sent about as many produce requests as one.
func TestManyConnectionsSendTheRequestsManyProducersWould(t *testing.T) {
	stack := startDevStack(t)
	requests := map[int]float64{}
	for _, conns := range []int{1, 10} {
		before := produceRequests(t, stack)
		res, err := Produce(context.Background(), ProduceOptions{Brokers: stack.Brokers, Topic: "study", CreateTopic: true,
			Records: 2000, Connections: conns, Profile: Profile{Rate: 2000}})
		if err != nil || res.Records != 2000 {
			t.Fatalf("%d connections: %d acked, %v", conns, res.Records, err)
		}
		requests[conns] = produceRequests(t, stack) - before
	}
	t.Logf("produce requests for 2,000 records at 2,000/s: %v by connections", requests)
	if requests[10] < 3*requests[1] {
		t.Errorf("10 connections sent %.0f produce requests, 1 sent %.0f: want several times more", requests[10], requests[1])
	}
}
