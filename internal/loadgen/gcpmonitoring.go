package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth/credentials"
)

// Google Managed Service for Apache Kafka publishes its metrics to Cloud
// Monitoring under managedkafka.googleapis.com/, listed in
// https://cloud.google.com/monitoring/api/metrics_gcp_i_o#gcp-managedkafka
// (and used in https://cloud.google.com/managed-service-for-apache-kafka/docs/monitor-reliability
// and .../docs/monitor-clients). The figures are read from these types.
// They were written from that list without network access to recheck
// it, and no connection count is among them; so which exist in a
// project is checked once against its metric descriptors, and a type
// Google renames or has not published shows as a named gap, not as a
// zero.
const (
	gcpMetricPrefix = "managedkafka.googleapis.com/"
	gcpByteIn       = gcpMetricPrefix + "byte_in_count"       // DELTA INT64 bytes produced
	gcpByteOut      = gcpMetricPrefix + "byte_out_count"      // DELTA INT64 bytes fetched
	gcpRequests     = gcpMetricPrefix + "request_count"       // DELTA INT64 requests, labelled by type
	gcpCPUUsage     = gcpMetricPrefix + "cpu/core_usage_time" // CUMULATIVE vCPU-seconds per broker
	gcpCPULimit     = gcpMetricPrefix + "cpu/limit"           // GAUGE vCPUs per broker
)

// gcpRefresh is how often Cloud Monitoring is asked: its Managed Kafka
// points are one a minute, so asking every second would only spend the
// project's read quota (timeSeries.list) on the same points.
const gcpRefresh = 30 * time.Second

// gcpWindow is how far back a query looks for the latest point: points
// arrive in Cloud Monitoring a few minutes after the minute they cover.
const gcpWindow = 6 * time.Minute

// cloudMonitoring reads one Managed Kafka cluster's figures from the
// Cloud Monitoring API v3 (projects.timeSeries.list, REST), as one
// "broker" named after the cluster: the service publishes cluster and
// topic totals, not what each broker's clients did.
type cloudMonitoring struct {
	project, cluster string
	location         string // from a full cluster name; empty: any region
	endpoint         string // https://monitoring.googleapis.com; a fake in tests
	client           *http.Client
	// token returns an OAuth 2.0 access token (Application Default
	// Credentials, scope monitoring.read, unless a test sets it).
	token func(ctx context.Context) (string, error)
	now   func() time.Time

	// types are the metric types the project has, listed once.
	types map[string]bool
	// last is the previous answer, given again until gcpRefresh passed.
	last   []BrokerSample
	lastAt time.Time
}

// newCloudMonitoring reads cluster, an ID or a full name
// (projects/P/locations/L/clusters/ID, as gcloud prints it, which also
// pins the region), in project.
func newCloudMonitoring(project, cluster string, timeout time.Duration) *cloudMonitoring {
	c := &cloudMonitoring{project: project, cluster: cluster, endpoint: "https://monitoring.googleapis.com",
		client: &http.Client{Timeout: timeout}, now: time.Now}
	if parts := strings.Split(cluster, "/"); len(parts) == 6 && parts[0] == "projects" && parts[2] == "locations" && parts[4] == "clusters" {
		c.location, c.cluster = parts[3], parts[5]
	}
	var once sync.Once
	var get func(context.Context) (string, error)
	var detectErr error
	c.token = func(ctx context.Context) (string, error) {
		once.Do(func() { get, detectErr = monitoringToken() })
		if detectErr != nil {
			return "", detectErr
		}
		return get(ctx)
	}
	return c
}

func (c *cloudMonitoring) name() string { return "cluster " + c.cluster }

// scrape returns the cluster's latest figures, asking Cloud Monitoring
// at most every gcpRefresh.
func (c *cloudMonitoring) scrape(ctx context.Context) ([]BrokerSample, error) {
	now := c.now()
	if !c.lastAt.IsZero() && now.Sub(c.lastAt) < gcpRefresh {
		// Between two reads the last figures stand; a failure was
		// reported when it happened.
		return c.last, nil
	}
	if c.types == nil {
		types, err := c.listTypes(ctx)
		if err != nil {
			c.last, c.lastAt = nil, now
			return nil, err
		}
		c.types = types
	}
	s := BrokerSample{Broker: c.name(), Requests: map[string]float64{}, HasRate: true, Interval: time.Minute,
		ConnectionsUnknown: true}
	var errs []error
	var missing []string
	read := func(metric string) []gcpSeries {
		if !c.types[metric] {
			missing = append(missing, metric)
			return nil
		}
		series, err := c.latest(ctx, metric, now)
		if err != nil {
			errs = append(errs, err)
		}
		return series
	}
	for _, ts := range pickResource(read(gcpByteIn)) {
		s.IngressBytes += ts.value
		if topic := ts.resource["topic_id"]; topic != "" {
			if s.IngressByTopic == nil {
				s.IngressByTopic = map[string]float64{}
			}
			s.IngressByTopic[topic] += ts.value
		}
	}
	for _, ts := range pickResource(read(gcpByteOut)) {
		s.EgressBytes += ts.value
	}
	for _, ts := range pickResource(read(gcpRequests)) {
		kind := requestKind(ts.labels)
		s.Requests[kind] += ts.value
		s.RequestsTotal += ts.value
	}
	usage, limit := read(gcpCPUUsage), read(gcpCPULimit)
	s.Load, s.HasLoad = cpuLoad(usage, limit)
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("reading Managed Kafka metrics: project %s has no %s", c.project, strings.Join(missing, ", ")))
	}
	c.last, c.lastAt = []BrokerSample{s}, now
	return c.last, errors.Join(errs...)
}

// gcpSeries is one time series' latest point, aligned to a rate for
// DELTA and CUMULATIVE metrics.
type gcpSeries struct {
	resourceType string
	resource     map[string]string
	labels       map[string]string
	value        float64
}

// pickResource keeps the series of one monitored resource type: a metric
// published for the cluster, per topic and per partition would otherwise
// be counted three times. The coarsest present wins.
func pickResource(series []gcpSeries) []gcpSeries {
	for _, rt := range []string{"managedkafka.googleapis.com/Cluster", "managedkafka.googleapis.com/Topic", "managedkafka.googleapis.com/TopicPartition"} {
		var out []gcpSeries
		for _, s := range series {
			if s.resourceType == rt {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return series
}

// requestKind is a request series' type: the label Google gives it.
func requestKind(labels map[string]string) string {
	for _, k := range []string{"request_type", "type", "api_key", "request"} {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return "all"
}

// cpuLoad is the busiest broker's CPU use over its limit, pairing usage
// and limit series by their labels; the cluster's total use over its
// total limit when they do not pair.
func cpuLoad(usage, limit []gcpSeries) (float64, bool) {
	if len(usage) == 0 || len(limit) == 0 {
		return 0, false
	}
	limits := map[string]float64{}
	var used, allowed float64
	for _, l := range limit {
		limits[seriesKey(l)] = l.value
		allowed += l.value
	}
	load, paired := 0.0, false
	for _, u := range usage {
		used += u.value
		if l := limits[seriesKey(u)]; l > 0 {
			load, paired = max(load, u.value/l), true
		}
	}
	if !paired {
		if allowed <= 0 {
			return 0, false
		}
		load = used / allowed
	}
	return clamp01(load), true
}

func seriesKey(s gcpSeries) string {
	var parts []string
	for _, m := range []map[string]string{s.resource, s.labels} {
		for k, v := range m {
			parts = append(parts, k+"="+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// listTypes lists the Managed Kafka metric types the project has
// (projects.metricDescriptors.list).
func (c *cloudMonitoring) listTypes(ctx context.Context) (map[string]bool, error) {
	types := map[string]bool{}
	q := url.Values{"filter": {fmt.Sprintf("metric.type = starts_with(%q)", gcpMetricPrefix)}}
	err := c.pages(ctx, "metricDescriptors", q, func(body []byte) (string, error) {
		var page struct {
			MetricDescriptors []struct {
				Type string `json:"type"`
			} `json:"metricDescriptors"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return "", err
		}
		for _, d := range page.MetricDescriptors {
			types[d.Type] = true
		}
		return page.NextPageToken, nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing Managed Kafka metric types in project %s: %w", c.project, err)
	}
	return types, nil
}

// latest reads each series' latest minute of metric for the cluster,
// as a rate per second for counters (ALIGN_RATE) and as is for gauges.
func (c *cloudMonitoring) latest(ctx context.Context, metric string, now time.Time) ([]gcpSeries, error) {
	aligner := "ALIGN_RATE"
	if metric == gcpCPULimit {
		aligner = "ALIGN_MEAN"
	}
	filter := fmt.Sprintf("metric.type = %q AND resource.labels.cluster_id = %q", metric, c.cluster)
	if c.location != "" {
		filter += fmt.Sprintf(" AND resource.labels.location = %q", c.location)
	}
	q := url.Values{
		"filter":                       {filter},
		"interval.startTime":           {now.Add(-gcpWindow).UTC().Format(time.RFC3339)},
		"interval.endTime":             {now.UTC().Format(time.RFC3339)},
		"aggregation.alignmentPeriod":  {"60s"},
		"aggregation.perSeriesAligner": {aligner},
		"view":                         {"FULL"},
	}
	var out []gcpSeries
	err := c.pages(ctx, "timeSeries", q, func(body []byte) (string, error) {
		var page struct {
			TimeSeries []struct {
				Metric struct {
					Labels map[string]string `json:"labels"`
				} `json:"metric"`
				Resource struct {
					Type   string            `json:"type"`
					Labels map[string]string `json:"labels"`
				} `json:"resource"`
				// Points come newest first.
				Points []struct {
					Value struct {
						DoubleValue *float64 `json:"doubleValue"`
						Int64Value  *string  `json:"int64Value"` // JSON strings, as int64 is in proto3 JSON
					} `json:"value"`
				} `json:"points"`
			} `json:"timeSeries"`
			NextPageToken string `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return "", err
		}
		for _, ts := range page.TimeSeries {
			if len(ts.Points) == 0 {
				continue
			}
			v := ts.Points[0].Value
			s := gcpSeries{resourceType: ts.Resource.Type, resource: ts.Resource.Labels, labels: ts.Metric.Labels}
			switch {
			case v.DoubleValue != nil:
				s.value = *v.DoubleValue
			case v.Int64Value != nil:
				n, err := strconv.ParseInt(*v.Int64Value, 10, 64)
				if err != nil {
					return "", fmt.Errorf("point of %s: %w", metric, err)
				}
				s.value = float64(n)
			default:
				continue
			}
			out = append(out, s)
		}
		return page.NextPageToken, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s of cluster %s: %w", metric, c.cluster, err)
	}
	return out, nil
}

// pages GETs projects/{project}/{collection} page by page.
func (c *cloudMonitoring) pages(ctx context.Context, collection string, q url.Values, page func([]byte) (string, error)) error {
	token, err := c.token(ctx)
	if err != nil {
		return err
	}
	for range 100 {
		u := fmt.Sprintf("%s/v3/projects/%s/%s?%s", c.endpoint, url.PathEscape(c.project), collection, q.Encode())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %s: %s", resp.Status, googleErrorMessage(body))
		}
		next, err := page(body)
		if err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
		if next == "" {
			return nil
		}
		q.Set("pageToken", next)
	}
	return errors.New("more than 100 pages")
}

// googleErrorMessage is the message of a Google API error body, which
// names what is wrong (permission, unknown project) without echoing the
// token.
func googleErrorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return "(no message)"
}

// monitoringToken finds Application Default Credentials for reading
// Cloud Monitoring; the library caches the token and refreshes it before
// it expires.
func monitoringToken() (func(context.Context) (string, error), error) {
	creds, err := credentials.DetectDefault(&credentials.DetectOptions{
		Scopes: []string{"https://www.googleapis.com/auth/monitoring.read"}})
	if err != nil {
		return nil, fmt.Errorf("finding Application Default Credentials for Cloud Monitoring (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS): %w", err)
	}
	return func(ctx context.Context) (string, error) {
		tok, err := creds.Token(ctx)
		if err != nil {
			return "", fmt.Errorf("getting a Google access token for Cloud Monitoring: %w", err)
		}
		return tok.Value, nil
	}, nil
}
