package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Where broker metrics come from (MonitorOptions.MetricsSource). Each
// source's names are mapped onto the same five figures; the table is in
// the README ("Broker metrics in sluice monitor").
const (
	MetricsAuto      = "auto"      // told apart by the names the endpoint serves
	MetricsSluice    = "sluice"    // the embedded broker of `sluice dev`
	MetricsJMX       = "jmx"       // Prometheus JMX exporter in front of Apache Kafka
	MetricsRedpanda  = "redpanda"  // Redpanda's /public_metrics
	MetricsConfluent = "confluent" // Confluent Cloud's Metrics API export
)

// BrokerSample is what one broker (or, for Confluent Cloud, one cluster)
// reported at a sample. Byte and request figures are per second over the
// interval since the previous sample, so the first sample of a broker
// has none (HasRate false), except from Confluent Cloud, whose export is
// already a per-minute delta.
type BrokerSample struct {
	Broker string
	// IngressBytes and EgressBytes are record bytes per second produced
	// to and fetched from the broker.
	IngressBytes, EgressBytes float64
	// Connections is the number of open client connections;
	// ConnectionsUnknown says the source does not count them (Cloud
	// Monitoring), so 0 is not a figure.
	Connections        float64
	ConnectionsUnknown bool
	// Requests is requests per second by request type (Produce, Fetch,
	// Metadata, ...), RequestsTotal their sum.
	Requests      map[string]float64
	RequestsTotal float64
	HasRate       bool
	// Interval is the time the rates are over: a rate times its
	// Interval is what the broker counted in it.
	Interval time.Duration
	// IngressByTopic splits IngressBytes by topic, where the source
	// counts per topic.
	IngressByTopic map[string]float64
	// Load is the broker's load from 0 to 1, as the source measures it
	// (see the README's table): request handler busy ratio (JMX), CPU
	// busy ratio (Redpanda, the embedded broker's process), or Confluent
	// Cloud's cluster load. HasLoad is false when the source gives none.
	Load    float64
	HasLoad bool
}

// TotalBrokers adds brokers up: bytes, connections and requests are
// summed, the load is the busiest broker's, which is what limits the
// cluster.
func TotalBrokers(bs []BrokerSample) BrokerSample {
	t := BrokerSample{Broker: "total", Requests: map[string]float64{}, HasRate: len(bs) > 0, ConnectionsUnknown: len(bs) > 0}
	for _, b := range bs {
		t.ConnectionsUnknown = t.ConnectionsUnknown && b.ConnectionsUnknown
		t.IngressBytes += b.IngressBytes
		t.EgressBytes += b.EgressBytes
		t.Connections += b.Connections
		t.RequestsTotal += b.RequestsTotal
		for k, v := range b.Requests {
			t.Requests[k] += v
		}
		t.HasRate = t.HasRate && b.HasRate
		t.Interval = max(t.Interval, b.Interval)
		if b.HasLoad {
			t.Load = max(t.Load, b.Load)
			t.HasLoad = true
		}
	}
	return t
}

// brokerReading is one scrape of one broker, before rates: counters are
// totals since the broker started, unless perSecond says the source
// already gives rates.
type brokerReading struct {
	broker      string
	in, out     float64
	inByTopic   map[string]float64
	connections float64
	requests    map[string]float64
	// cpuSeconds and cores give a load from two readings; load is one
	// read as a gauge.
	cpuSeconds, cores float64
	load              float64
	hasLoad, hasCPU   bool
	perSecond         bool
}

// row is one series of a scrape, flattened: a histogram or summary is
// its _count.
type row struct {
	name   string
	labels map[string]string
	value  float64
}

func (r row) label(name string) string { return r.labels[name] }

func parseMetrics(in io.Reader) ([]row, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(in)
	if err != nil {
		return nil, fmt.Errorf("parsing Prometheus text: %w", err)
	}
	var rows []row
	for name, f := range families {
		for _, m := range f.GetMetric() {
			r := row{name: name, labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				r.labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				r.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				r.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				r.name, r.value = name+"_count", float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_SUMMARY:
				r.name, r.value = name+"_count", float64(m.GetSummary().GetSampleCount())
			default:
				r.value = m.GetUntyped().GetValue()
			}
			rows = append(rows, r)
		}
	}
	// Map iteration order must not decide which series wins a tie.
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.name, b.name) })
	return rows, nil
}

// detectSource tells the source by the names it serves.
func detectSource(rows []row) string {
	source := ""
	for _, r := range rows {
		switch {
		case r.name == "sluice_broker_cpu_cores":
			return MetricsSluice
		case strings.HasPrefix(r.name, "confluent_kafka_server_"):
			return MetricsConfluent
		case strings.HasPrefix(r.name, "redpanda_"):
			source = MetricsRedpanda
		case strings.HasPrefix(r.name, "kafka_server_") && source == "":
			source = MetricsJMX
		}
	}
	return source
}

// readBrokers maps one scrape onto broker readings. endpoint names the
// broker of a source that serves one broker per endpoint.
func readBrokers(source, endpoint string, rows []row) ([]brokerReading, error) {
	switch source {
	case MetricsSluice:
		return readSluice(rows), nil
	case MetricsJMX:
		return []brokerReading{readJMX(endpoint, rows)}, nil
	case MetricsRedpanda:
		return []brokerReading{readRedpanda(endpoint, rows)}, nil
	case MetricsConfluent:
		return readConfluent(rows), nil
	}
	return nil, fmt.Errorf("no Kafka broker metrics recognised (source %q): is this the right endpoint?", source)
}

func readSluice(rows []row) []brokerReading {
	byBroker := map[string]*brokerReading{}
	get := func(b string) *brokerReading {
		r := byBroker[b]
		if r == nil {
			r = &brokerReading{broker: "broker " + b, requests: map[string]float64{}}
			byBroker[b] = r
		}
		return r
	}
	var cpu, cores float64
	for _, r := range rows {
		switch r.name {
		case "kafka_server_brokertopicmetrics_bytesin_total":
			b := get(r.label("broker"))
			b.in += r.value
			b.addTopic(r.label("topic"), r.value)
		case "kafka_server_brokertopicmetrics_bytesout_total":
			get(r.label("broker")).out += r.value
		case "kafka_server_socket_server_metrics_connection_count":
			get(r.label("broker")).connections += r.value
		case "kafka_network_requestmetrics_requests_total":
			get(r.label("broker")).requests[r.label("request")] += r.value
		case "process_cpu_seconds_total":
			cpu = r.value
		case "sluice_broker_cpu_cores":
			cores = r.value
		}
	}
	var out []brokerReading
	for _, b := range byBroker {
		// Every embedded broker is the same process: its CPU is theirs.
		b.cpuSeconds, b.cores, b.hasCPU = cpu, cores, cores > 0
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b brokerReading) int { return strings.Compare(a.broker, b.broker) })
	return out
}

// readJMX reads a JMX exporter's page for one broker. BrokerTopicMetrics
// come per topic and, without a topic label, for all topics: the latter
// is used where present, so nothing is counted twice.
func readJMX(endpoint string, rows []row) brokerReading {
	b := brokerReading{broker: endpoint, requests: map[string]float64{}}
	var inAll, outAll, inTopics, outTopics float64
	var haveInAll, haveOutAll bool
	for _, r := range rows {
		_, perTopic := r.labels["topic"]
		switch r.name {
		case "kafka_server_brokertopicmetrics_bytesin_total":
			if perTopic {
				inTopics += r.value
				b.addTopic(r.label("topic"), r.value)
			} else {
				inAll, haveInAll = inAll+r.value, true
			}
		case "kafka_server_brokertopicmetrics_bytesout_total":
			if perTopic {
				outTopics += r.value
			} else {
				outAll, haveOutAll = outAll+r.value, true
			}
		case "kafka_server_socket_server_metrics_connection_count":
			// KRaft's controller listener carries the quorum, not clients.
			if r.label("listener") != "CONTROLLER" {
				b.connections += r.value
			}
		case "kafka_network_requestmetrics_requests_total":
			b.requests[r.label("request")] += r.value
		case "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent",
			"kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent":
			b.load, b.hasLoad = clamp01(1-r.value), true
		}
	}
	b.in, b.out = inTopics, outTopics
	if haveInAll {
		b.in = inAll
	}
	if haveOutAll {
		b.out = outAll
	}
	return b
}

// readRedpanda reads one broker's /public_metrics. Redpanda counts
// requests by kind only for produce and consume.
func readRedpanda(endpoint string, rows []row) brokerReading {
	b := brokerReading{broker: endpoint, requests: map[string]float64{}}
	for _, r := range rows {
		switch r.name {
		case "redpanda_kafka_request_bytes_total":
			switch r.label("redpanda_request") {
			case "produce":
				b.in += r.value
				b.addTopic(r.label("redpanda_topic"), r.value)
			case "consume":
				b.out += r.value
			}
		case "redpanda_rpc_active_connections":
			if r.label("redpanda_server") == "kafka" {
				b.connections += r.value
			}
		case "redpanda_kafka_request_latency_seconds_count":
			b.requests[r.label("redpanda_request")] += r.value
		case "redpanda_cpu_busy_seconds_total":
			b.cpuSeconds += r.value
			b.cores++ // one series per shard, and a shard is a core
			b.hasCPU = true
		}
	}
	return b
}

// readConfluent reads Confluent Cloud's export: one cluster per kafka_id,
// each value the total over the last minute.
func readConfluent(rows []row) []brokerReading {
	byCluster := map[string]*brokerReading{}
	get := func(id string) *brokerReading {
		r := byCluster[id]
		if r == nil {
			r = &brokerReading{broker: id, requests: map[string]float64{}, perSecond: true}
			byCluster[id] = r
		}
		return r
	}
	for _, r := range rows {
		id := r.label("kafka_id")
		switch r.name {
		case "confluent_kafka_server_received_bytes":
			get(id).in += r.value / 60
			get(id).addTopic(r.label("topic"), r.value/60)
		case "confluent_kafka_server_sent_bytes":
			get(id).out += r.value / 60
		case "confluent_kafka_server_active_connection_count":
			get(id).connections += r.value
		case "confluent_kafka_server_request_count":
			get(id).requests[r.label("type")] += r.value / 60
		case "confluent_kafka_server_cluster_load_percent":
			b := get(id)
			b.load, b.hasLoad = clamp01(r.value), true
		}
	}
	var out []brokerReading
	for _, b := range byCluster {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b brokerReading) int { return strings.Compare(a.broker, b.broker) })
	return out
}

func (b *brokerReading) addTopic(topic string, v float64) {
	if topic == "" {
		return
	}
	if b.inByTopic == nil {
		b.inByTopic = map[string]float64{}
	}
	b.inByTopic[topic] += v
}

func clamp01(v float64) float64 { return min(1, max(0, v)) }

// brokerRates turns two readings of a broker into a sample; prev is nil
// on the first.
func brokerRates(cur brokerReading, prev *brokerReading, seconds float64) BrokerSample {
	s := BrokerSample{Broker: cur.broker, Connections: cur.connections, Requests: map[string]float64{},
		Load: cur.load, HasLoad: cur.hasLoad}
	if cur.perSecond {
		s.IngressBytes, s.EgressBytes, s.HasRate, s.Interval = cur.in, cur.out, true, time.Minute
		s.IngressByTopic = cur.inByTopic
		for k, v := range cur.requests {
			s.Requests[k] = v
			s.RequestsTotal += v
		}
		return s
	}
	if prev == nil || seconds <= 0 {
		return s
	}
	// A counter that went down was reset (the broker restarted): its
	// rate this interval is unknown, not negative.
	rate := func(now, before float64) float64 { return max(0, now-before) / seconds }
	s.IngressBytes, s.EgressBytes, s.HasRate = rate(cur.in, prev.in), rate(cur.out, prev.out), true
	s.Interval = time.Duration(seconds * float64(time.Second))
	if len(cur.inByTopic) > 0 {
		s.IngressByTopic = map[string]float64{}
		for topic, v := range cur.inByTopic {
			s.IngressByTopic[topic] = rate(v, prev.inByTopic[topic])
		}
	}
	for k, v := range cur.requests {
		r := rate(v, prev.requests[k])
		s.Requests[k] = r
		s.RequestsTotal += r
	}
	if cur.hasCPU && prev.hasCPU && cur.cores > 0 {
		s.Load, s.HasLoad = clamp01(rate(cur.cpuSeconds, prev.cpuSeconds)/cur.cores), true
	}
	return s
}

// metricsScraper reads broker metrics from Prometheus endpoints, one
// broker (JMX exporter, Redpanda) or many (the embedded broker,
// Confluent Cloud) per endpoint.
type metricsScraper struct {
	urls   []string
	source string
	client *http.Client
	// user and password, for Confluent Cloud's export (basic auth with an
	// API key and secret).
	user, password string

	// prev is each broker's last reading and when it was taken. A broker
	// that could not be read keeps its last one, so the next rate spans
	// the gap instead of losing what happened in it.
	prev   map[string]brokerReading
	prevAt map[string]time.Time
}

// scrape reads every endpoint and returns its brokers sorted by name; a
// failing endpoint is reported in the error, the others still count.
func (m *metricsScraper) scrape(ctx context.Context) ([]BrokerSample, error) {
	var readings []brokerReading
	var errs []error
	for _, u := range m.urls {
		rs, err := m.scrapeOne(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		readings = append(readings, rs...)
	}
	now := time.Now()
	if m.prev == nil {
		m.prev, m.prevAt = map[string]brokerReading{}, map[string]time.Time{}
	}
	var out []BrokerSample
	for _, r := range readings {
		var prev *brokerReading
		seconds := 0.0
		if p, ok := m.prev[r.broker]; ok {
			prev, seconds = &p, now.Sub(m.prevAt[r.broker]).Seconds()
		}
		out = append(out, brokerRates(r, prev, seconds))
		m.prev[r.broker], m.prevAt[r.broker] = r, now
	}
	slices.SortFunc(out, func(a, b BrokerSample) int { return strings.Compare(a.Broker, b.Broker) })
	return out, errors.Join(errs...)
}

func (m *metricsScraper) scrapeOne(ctx context.Context, u string) ([]brokerReading, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("reading broker metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if m.user != "" {
		req.SetBasicAuth(m.user, m.password)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading broker metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The body of an error page may echo credentials; it is not shown.
		return nil, fmt.Errorf("reading broker metrics from %s: HTTP %s", redactURL(u), resp.Status)
	}
	rows, err := parseMetrics(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading broker metrics from %s: %w", redactURL(u), err)
	}
	source := m.source
	if source == "" || source == MetricsAuto {
		source = detectSource(rows)
	}
	rs, err := readBrokers(source, endpointName(u), rows)
	if err != nil {
		return nil, fmt.Errorf("reading broker metrics from %s: %w", redactURL(u), err)
	}
	return rs, nil
}

// endpointName names the broker behind a one-broker endpoint: its host
// and port.
func endpointName(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	return p.Host
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
