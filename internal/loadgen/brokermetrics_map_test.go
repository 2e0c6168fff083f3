package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []row {
	t.Helper()
	f, err := os.Open("testdata/brokermetrics/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parseMetrics(f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// Each source's real metric names, as recorded in testdata, map onto the
// same figures: bytes in and out, connections, requests by type, load.
func TestBrokerMetricsMappingOfEachSource(t *testing.T) {
	for _, tc := range []struct {
		fixture, source string
		want            brokerReading
	}{
		{
			// The all-topics series is used, not added to the per-topic ones;
			// KRaft's controller listener holds no client connections;
			// requests are summed over versions.
			fixture: "jmx-exporter.prom", source: MetricsJMX,
			want: brokerReading{broker: "kafka-1:7071", in: 12e6, out: 30e6, connections: 21,
				requests:  map[string]float64{"Produce": 5000, "FetchConsumer": 800, "Metadata": 50},
				inByTopic: map[string]float64{"orders": 10e6, "films": 2e6},
				load:      0.25, hasLoad: true},
		},
		{
			// Follower fetches are replication, not client egress; CPU is
			// summed over shards, one core each.
			fixture: "redpanda-public.prom", source: MetricsRedpanda,
			want: brokerReading{broker: "kafka-1:7071", in: 7e6, out: 9e6, connections: 21,
				requests:   map[string]float64{"produce": 3000, "consume": 500},
				inByTopic:  map[string]float64{"orders": 6e6, "films": 1e6},
				cpuSeconds: 2000, cores: 2, hasCPU: true},
		},
		{
			// Per-minute deltas become per-second rates.
			fixture: "confluent-export.prom", source: MetricsConfluent,
			want: brokerReading{broker: "lkc-1j9y0q", in: 72e6 / 60, out: 120e6 / 60, connections: 42,
				requests:  map[string]float64{"Produce": 500, "Fetch": 100},
				inByTopic: map[string]float64{"orders": 1e6, "films": 0.2e6},
				load:      0.42, hasLoad: true, perSecond: true},
		},
	} {
		t.Run(tc.source, func(t *testing.T) {
			rows := readFixture(t, tc.fixture)
			if got := detectSource(rows); got != tc.source {
				t.Fatalf("detected %q, want %q", got, tc.source)
			}
			rs, err := readBrokers(tc.source, "kafka-1:7071", rows)
			if err != nil || len(rs) != 1 {
				t.Fatalf("%d brokers, %v", len(rs), err)
			}
			got, want := rs[0], tc.want
			if got.broker != want.broker || !near(got.in, want.in) || !near(got.out, want.out) ||
				got.connections != want.connections || !near(got.load, want.load) || got.hasLoad != want.hasLoad ||
				got.cpuSeconds != want.cpuSeconds || got.cores != want.cores || got.hasCPU != want.hasCPU ||
				got.perSecond != want.perSecond || len(got.requests) != len(want.requests) {
				t.Errorf("read %+v\nwant %+v", got, want)
			}
			for k, v := range want.requests {
				if !near(got.requests[k], v) {
					t.Errorf("requests %s: %v, want %v", k, got.requests[k], v)
				}
			}
			if len(got.inByTopic) != len(want.inByTopic) {
				t.Errorf("bytes in by topic %v, want %v", got.inByTopic, want.inByTopic)
			}
			for k, v := range want.inByTopic {
				if !near(got.inByTopic[k], v) {
					t.Errorf("bytes in of %s: %v, want %v", k, got.inByTopic[k], v)
				}
			}
		})
	}
}

// Rates come from two readings; a counter that went down (a restarted
// broker) is not a negative rate, and the load of a CPU-counting source
// is busy seconds per second per core.
func TestBrokerRatesFromTwoReadings(t *testing.T) {
	prev := brokerReading{broker: "b", in: 1000, out: 5000, requests: map[string]float64{"Produce": 10}, cpuSeconds: 10, cores: 2, hasCPU: true}
	cur := brokerReading{broker: "b", in: 3000, out: 100, connections: 3, requests: map[string]float64{"Produce": 30, "Fetch": 4}, cpuSeconds: 11, cores: 2, hasCPU: true}
	s := brokerRates(cur, &prev, 2)
	if !s.HasRate || s.IngressBytes != 1000 || s.EgressBytes != 0 || s.Requests["Produce"] != 10 ||
		s.Requests["Fetch"] != 2 || s.RequestsTotal != 12 || s.Connections != 3 || !s.HasLoad || s.Load != 0.25 || s.Interval != 2*time.Second {
		t.Errorf("rates %+v", s)
	}
	if first := brokerRates(cur, nil, 0); first.HasRate || first.HasLoad || first.Connections != 3 {
		t.Errorf("first reading %+v: want connections but no rate yet", first)
	}
	total := TotalBrokers([]BrokerSample{s, {Broker: "c", HasRate: true, IngressBytes: 5, Connections: 1, Load: 0.5, HasLoad: true, Requests: map[string]float64{"Produce": 1}}})
	if total.IngressBytes != 1005 || total.Connections != 4 || total.Load != 0.5 || total.Requests["Produce"] != 11 {
		t.Errorf("total %+v: want sums, and the busiest broker's load", total)
	}
}

// Confluent Cloud's export is read with the API key from the environment
// as basic auth; a refused key says so without showing the key.
func TestConfluentExportIsReadWithItsAPIKey(t *testing.T) {
	page, err := os.ReadFile("testdata/brokermetrics/confluent-export.prom")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "KEY" || pass != "s3cret" {
			http.Error(w, "bad key s3cret", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(page)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/v2/metrics/cloud/export?resource.kafka.id=lkc-1j9y0q"
	m := &metricsScraper{urls: []string{url}, client: srv.Client(), user: "KEY", password: "s3cret"}
	bs, err := m.scrape(context.Background())
	if err != nil || len(bs) != 1 {
		t.Fatalf("%+v, %v", bs, err)
	}
	if b := bs[0]; b.Broker != "lkc-1j9y0q" || !b.HasRate || b.IngressBytes != 1.2e6 || b.Load != 0.42 {
		t.Errorf("first sample %+v: Confluent's per-minute deltas are rates at once", b)
	}
	m = &metricsScraper{urls: []string{url}, client: srv.Client(), user: "KEY", password: "wrong"}
	_, err = m.scrape(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("refused key: %v", err)
	}
}

// A scrape that fails (a timeout on a starved machine) must not lose
// what the broker counted meanwhile: the next rate spans both intervals.
func TestAFailedScrapeLosesNoCounts(t *testing.T) {
	var mu sync.Mutex
	bytesIn, fail := 0, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "sluice_broker_cpu_cores 2\nkafka_server_brokertopicmetrics_bytesin_total{broker=\"0\",topic=\"t\"} %d\n", bytesIn)
	}))
	t.Cleanup(srv.Close)
	m := &metricsScraper{urls: []string{srv.URL}, client: srv.Client()}
	set := func(in int, failing bool) {
		mu.Lock()
		bytesIn, fail = in, failing
		mu.Unlock()
	}
	total := 0.0
	for _, step := range []struct {
		in      int
		failing bool
	}{{0, false}, {1000, false}, {5000, true}, {9000, false}} {
		set(step.in, step.failing)
		bs, err := m.scrape(context.Background())
		if (err != nil) != step.failing {
			t.Fatalf("at %d bytes: %v", step.in, err)
		}
		for _, b := range bs {
			if b.HasRate {
				total += b.IngressBytes * b.Interval.Seconds()
			}
		}
		time.Sleep(5 * time.Millisecond) // the intervals need a width
	}
	if math.Abs(total-9000) > 1e-6*9000 {
		t.Errorf("counted %.3f bytes over the run, the broker counted 9000", total)
	}
}
