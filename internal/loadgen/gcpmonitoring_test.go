package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCloudMonitoring is a small fake of the Cloud Monitoring API v3:
// projects.metricDescriptors.list and projects.timeSeries.list, answering
// for one project with the series given per metric type, split in pages
// of one series to exercise paging. It checks the bearer token.
type fakeCloudMonitoring struct {
	project, token string
	types          []string
	series         map[string][]map[string]any

	mu      sync.Mutex
	filters []string
}

func (f *fakeCloudMonitoring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`))
		return
	}
	prefix := "/v3/projects/" + f.project + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":403,"message":"Permission monitoring.timeSeries.list denied (or the resource may not exist).","status":"PERMISSION_DENIED"}}`))
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	f.filters = append(f.filters, q.Get("filter"))
	f.mu.Unlock()
	switch strings.TrimPrefix(r.URL.Path, prefix) {
	case "metricDescriptors":
		var ds []map[string]string
		for _, t := range f.types {
			ds = append(ds, map[string]string{"type": t})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"metricDescriptors": ds})
	case "timeSeries":
		if q.Get("interval.endTime") == "" || q.Get("aggregation.perSeriesAligner") == "" {
			http.Error(w, `{"error":{"message":"interval and aligner are required"}}`, http.StatusBadRequest)
			return
		}
		var metric string
		if _, err := fmt.Sscanf(strings.SplitN(q.Get("filter"), " AND ", 2)[0], "metric.type = %q", &metric); err != nil {
			http.Error(w, `{"error":{"message":"bad filter"}}`, http.StatusBadRequest)
			return
		}
		all := f.series[metric]
		page := 0
		fmt.Sscan(q.Get("pageToken"), &page)
		answer := map[string]any{}
		if page < len(all) {
			answer["timeSeries"] = all[page : page+1]
			if page+1 < len(all) {
				answer["nextPageToken"] = fmt.Sprint(page + 1)
			}
		}
		_ = json.NewEncoder(w).Encode(answer)
	default:
		http.NotFound(w, r)
	}
}

// series builds one time series as timeSeries.list returns it (points
// newest first; int64 values as JSON strings).
func series(resourceType string, resource, labels map[string]string, newest any, older ...any) map[string]any {
	points := []map[string]any{}
	for _, v := range append([]any{newest}, older...) {
		value := map[string]any{"doubleValue": v}
		if s, ok := v.(string); ok {
			value = map[string]any{"int64Value": s}
		}
		points = append(points, map[string]any{"value": value})
	}
	return map[string]any{"metric": map[string]any{"labels": labels},
		"resource": map[string]any{"type": resourceType, "labels": resource}, "points": points}
}

func managedKafkaFake() *fakeCloudMonitoring {
	topic := func(name string) map[string]string {
		return map[string]string{"cluster_id": "orders-kafka", "topic_id": name, "location": "europe-west1"}
	}
	partition := func(name, p string) map[string]string {
		return map[string]string{"cluster_id": "orders-kafka", "topic_id": name, "partition_id": p}
	}
	broker := func(i string) map[string]string { return map[string]string{"broker_index": i} }
	cluster := map[string]string{"cluster_id": "orders-kafka", "location": "europe-west1"}
	return &fakeCloudMonitoring{project: "shop-prod", token: "ya29.secret",
		types: []string{gcpByteIn, gcpByteOut, gcpRequests, gcpCPUUsage, gcpCPULimit, gcpMetricPrefix + "offset_lag"},
		series: map[string][]map[string]any{
			// Per topic and per partition: only one resource type counts.
			gcpByteIn: {
				series("managedkafka.googleapis.com/Topic", topic("orders"), nil, 4e6, 1e6),
				series("managedkafka.googleapis.com/Topic", topic("films"), nil, 1e6),
				series("managedkafka.googleapis.com/TopicPartition", partition("orders", "0"), nil, 4e6),
			},
			gcpByteOut: {series("managedkafka.googleapis.com/Topic", topic("orders"), nil, 12e6)},
			gcpRequests: {
				series("managedkafka.googleapis.com/Cluster", cluster, map[string]string{"request_type": "Produce"}, 300.0),
				series("managedkafka.googleapis.com/Cluster", cluster, map[string]string{"request_type": "Fetch"}, 120.0),
			},
			// Three brokers of 1 vCPU; the busiest uses 0.6 of its one.
			gcpCPUUsage: {
				series("managedkafka.googleapis.com/Cluster", cluster, broker("0"), 0.6),
				series("managedkafka.googleapis.com/Cluster", cluster, broker("1"), 0.3),
				series("managedkafka.googleapis.com/Cluster", cluster, broker("2"), 0.2),
			},
			gcpCPULimit: {
				series("managedkafka.googleapis.com/Cluster", cluster, broker("0"), "1"),
				series("managedkafka.googleapis.com/Cluster", cluster, broker("1"), "1"),
				series("managedkafka.googleapis.com/Cluster", cluster, broker("2"), "1"),
			},
		}}
}

// Google Managed Kafka's figures come from Cloud Monitoring's
// timeSeries.list, here a fake of it (no network in the test): bytes in
// and out, requests by type and the busiest broker's CPU over its limit;
// Cloud Monitoring counts no connections, which shows as unknown, not 0.
func TestManagedKafkaFiguresFromCloudMonitoring(t *testing.T) {
	fake := managedKafkaFake()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)

	// Through Monitor, as `sluice monitor --gcp-project --cluster` runs it.
	samples := monitorSamples(t, MonitorOptions{Brokers: startBroker(t), Interval: 100 * time.Millisecond,
		GCPProject: "shop-prod", GCPCluster: "orders-kafka", cloudMonitoringURL: srv.URL,
		cloudMonitoringToken: func(context.Context) (string, error) { return "ya29.secret", nil }}, 4)
	for _, s := range samples {
		if s.Err != "" || len(s.Brokers) != 1 {
			t.Fatalf("sample %+v", s)
		}
		b := s.Brokers[0]
		if b.Broker != "cluster orders-kafka" || !b.HasRate || b.IngressBytes != 5e6 || b.EgressBytes != 12e6 ||
			b.Requests["Produce"] != 300 || b.Requests["Fetch"] != 120 || b.RequestsTotal != 420 ||
			!b.HasLoad || b.Load != 0.6 || !b.ConnectionsUnknown || b.IngressByTopic["orders"] != 4e6 {
			t.Errorf("figures %+v", b)
		}
	}
	// Points are a minute apart: Cloud Monitoring is asked once for the
	// whole run, not at every sample: the descriptors, then each metric's
	// pages (one series a page).
	fake.mu.Lock()
	filters := fake.filters
	fake.mu.Unlock()
	if len(filters) != 1+3+1+2+3+3 {
		t.Errorf("%d requests for %d samples: %q", len(filters), len(samples), filters)
	}
	for _, f := range filters[1:] {
		if !strings.Contains(f, `resource.labels.cluster_id = "orders-kafka"`) {
			t.Errorf("filter %q does not select the cluster", f)
		}
	}

	// The connections chart has no line of zeros; the load chart has its
	// 100% line and a --limit's.
	limit, err := ParseLimit("ingress=20MB/s")
	if err != nil {
		t.Fatal(err)
	}
	charts := map[string]Chart{}
	for _, c := range MonitorReport(nil, samples, limit).Charts {
		charts[c.Title] = c
	}
	if c := charts["Open client connections"]; len(c.Series) != 0 {
		t.Errorf("connections chart %+v from a source that counts none", c)
	}
	if c := charts["Broker ingress (record bytes produced)"]; len(c.Lines) != 1 || c.Lines[0].Y != 20e6 {
		t.Errorf("ingress chart lines %+v", c.Lines)
	}
}

// What goes wrong is said: a metric type the project lacks is named, a
// refused token gives Google's message, and neither echoes the token.
func TestManagedKafkaProblemsAreNamed(t *testing.T) {
	fake := managedKafkaFake()
	fake.types = []string{gcpByteIn, gcpByteOut, gcpRequests}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cm := newCloudMonitoring("shop-prod", "orders-kafka", 5*time.Second)
	cm.endpoint = srv.URL
	cm.token = func(context.Context) (string, error) { return "ya29.secret", nil }
	bs, err := cm.scrape(context.Background())
	if err == nil || !strings.Contains(err.Error(), "has no "+gcpCPUUsage+", "+gcpCPULimit) {
		t.Errorf("missing CPU metrics: %v", err)
	}
	if len(bs) != 1 || bs[0].HasLoad || bs[0].IngressBytes != 5e6 {
		t.Errorf("figures without CPU metrics %+v", bs)
	}

	// A full cluster name, as gcloud prints it, also pins the region.
	full := newCloudMonitoring("shop-prod", "projects/shop-prod/locations/europe-west1/clusters/orders-kafka", 5*time.Second)
	full.endpoint = srv.URL
	full.token = cm.token
	fake.filters = nil
	if _, err := full.scrape(context.Background()); full.cluster != "orders-kafka" || len(fake.filters) < 2 ||
		!strings.HasSuffix(fake.filters[1], `resource.labels.cluster_id = "orders-kafka" AND resource.labels.location = "europe-west1"`) {
		t.Errorf("full name: cluster %q, filters %q, %v", full.cluster, fake.filters, err)
	}

	for name, cm := range map[string]*cloudMonitoring{
		"Request had invalid authentication credentials": newCloudMonitoring("shop-prod", "orders-kafka", 5*time.Second),
		"Permission monitoring.timeSeries.list denied":   newCloudMonitoring("someone-else", "orders-kafka", 5*time.Second),
	} {
		cm.endpoint = srv.URL
		cm.token = func(context.Context) (string, error) { return "ya29.expired", nil }
		if name == "Permission monitoring.timeSeries.list denied" {
			cm.token = func(context.Context) (string, error) { return "ya29.secret", nil }
		}
		_, err := cm.scrape(context.Background())
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "ya29") {
			t.Errorf("want %q: %v", name, err)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"ingress=50MB/s":   {Figure: "ingress", Value: 50e6, Text: "ingress limit 50MB/s"},
		"egress=1GiB/s":    {Figure: "egress", Value: 1 << 30, Text: "egress limit 1GiB/s"},
		"connections=1000": {Figure: "connections", Value: 1000, Text: "connections limit 1000"},
		"requests=15000/s": {Figure: "requests", Value: 15000, Text: "requests limit 15000/s"},
		"load=80%":         {Figure: "load", Value: 80, Text: "load limit 80%"},
	} {
		if got, err := ParseLimit(in); err != nil || got != want {
			t.Errorf("%s: %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"ingress", "lag=5", "ingress=fast", "ingress=-1MB/s", "egress=5MB"} {
		if _, err := ParseLimit(bad); err == nil || !strings.Contains(err.Error(), "--limit") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
