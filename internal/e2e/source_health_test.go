package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// TestSourceUnreachableShownInStatus: the pipeline's only broker goes down
// (connections reset, new ones refused) or is cut off (nothing answers).
// Records stop moving, as they would on an idle topic; status, the
// summary and /metrics say the source is unreachable, since when and
// why. When the broker is back, status is healthy again by itself and
// every record reaches the sink. An idle topic before that is healthy.
func TestSourceUnreachableShownInStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		why  []string // what the last error says, one of these
	}{
		{"down", []string{"connection refused"}},
		// Requests time out: the connection's read deadline, or the
		// request's own.
		{"partition", []string{"i/o timeout", "deadline exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) { sourceOutageShown(t, tc.name, tc.why) })
	}
}

func sourceOutageShown(t *testing.T, outage string, why []string) {
	const n = 2000
	name := "health-" + outage
	pb := startProxiedBroker(t)
	createTopic(t, pb.brokers, "in", 3)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [in], group: %s, consumers: 2}
format: {value: json}
batch: {max_records: 500}
sink:
  file: {path: %s}
`, name, pb.brokers[0], name, out))
	base := serveAdmin(t, context.Background(), b, 200*time.Millisecond, testLogger(t))
	source := func() (connector.SourceHealth, admin.Detail) { return sourceHealthOf(t, base, name) }

	pb.produceDirect(t, "in", 0, n/2)
	eventually(t, 30*time.Second, "the first half written", func() bool { return b.Pipeline.Status().RecordsOut == n/2 })
	// Idle: nothing to read for longer than a fetch's wait (5 s), which
	// is no failure.
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if h, d := source(); h.State != connector.SourceHealthy || d.Degraded {
			t.Fatalf("idle topic, broker up: source %+v, degraded %v; want healthy", h, d.Degraded)
		}
	}

	downAt := time.Now()
	if outage == "down" {
		if err := pb.proxy.Refuse(); err != nil {
			t.Fatal(err)
		}
		pb.proxy.ResetAll()
	} else if err := pb.proxy.BlackHole(); err != nil {
		t.Fatal(err)
	}
	pb.produceDirect(t, "in", n/2, n/2) // the input goes on
	waitSourceUnreachable(t, base, name, outage, downAt, 90*time.Second, why, "connect|request")
	if outage == "down" {
		t.Run("dashboard", func(t *testing.T) {
			browser := newBrowser(t) // skips without a browser
			if err := chromedp.Do(browser, chromedp.Navigate(base+"/")); err != nil {
				t.Fatalf("opening the dashboard: %v", err)
			}
			waitJS(t, browser, 30*time.Second, "the source banner and the state degraded",
				`!document.querySelector('#p-source').hidden && /^source unreachable for \d+s .*connection refused/.test(document.querySelector('#p-source').textContent) &&
				document.querySelector('#p-state').textContent === "degraded"`)
			screenshot(t, browser, artifactDir(t), "dashboard-source-unreachable.png")
		})
	}
	if got := b.Pipeline.Status().RecordsOut; got != n/2 {
		t.Fatalf("%d records out during the outage, want the %d from before it: the outage did not hit the pipeline", got, n/2)
	}

	if err := pb.proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	waitSourceHealthy(t, base, name, outage, 60*time.Second)
	adm := adminClientWith(t, pb.brokers, pb.direct)
	waitCommittedToEnd(t, adm, name, "in", 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	seen := map[string]int{}
	for _, l := range readLines(t, out) {
		v, _ := l["value"].(map[string]any)
		seen[fmt.Sprint(v["id"])]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records at the sink, want %d (records lost)", len(seen), n)
	}
}

// sourceHealthOf is the pipeline's source health as the admin API shows
// it, and the pipeline's detail.
func sourceHealthOf(t *testing.T, base, name string) (connector.SourceHealth, admin.Detail) {
	t.Helper()
	d := pipelineDetail(t, base, name)
	if d.Source == nil {
		t.Fatal("status has no source health")
	}
	return *d.Source, d
}

// waitSourceUnreachable waits (up to wait) for status to say the source
// is unreachable, with one of why in the last error, since the outage
// began at downAt, and checks that the pipeline list and /metrics say so
// too (sluice_source_up 0, errors counted of one of kinds, a regexp
// alternation).
func waitSourceUnreachable(t *testing.T, base, name, outage string, downAt time.Time, wait time.Duration, why []string, kinds string) connector.SourceHealth {
	t.Helper()
	says := func(h connector.SourceHealth) bool {
		for _, w := range why {
			if strings.Contains(h.LastError, w) {
				return true
			}
		}
		return false
	}
	var h connector.SourceHealth
	var d admin.Detail
	eventually(t, wait, fmt.Sprintf("status to say the source is unreachable with one of %q", why), func() bool {
		h, d = sourceHealthOf(t, base, name)
		return h.State == connector.SourceUnreachable && says(h)
	})
	if h.Errors == 0 || h.Since.Before(downAt.Add(-time.Second)) || h.Since.After(time.Now()) || !d.Degraded {
		t.Fatalf("source %+v, degraded %v; want unreachable since the outage (%s) with one of %q", h, d.Degraded, downAt.Format(time.RFC3339Nano), why)
	}
	t.Logf("%s: status said unreachable %v after the outage began: %d errors, last: %s", outage, time.Since(downAt).Round(100*time.Millisecond), h.Errors, h.LastError)
	var list struct{ Pipelines []admin.Summary }
	if apiCall(t, "GET", base+"/v1/pipelines", "", &list); len(list.Pipelines) != 1 || list.Pipelines[0].Source == nil || list.Pipelines[0].Source.State != connector.SourceUnreachable {
		t.Fatalf("the pipeline list does not show the source unreachable: %+v", list.Pipelines)
	}
	errorsCounted := regexp.MustCompile(`sluice_source_errors_total\{kind="(` + kinds + `)",pipeline="` + name + `"\} [1-9]`)
	if m := metricsText(t, base); !strings.Contains(m, fmt.Sprintf("sluice_source_up{pipeline=%q} 0", name)) || !errorsCounted.MatchString(m) {
		t.Fatalf("/metrics lacks sluice_source_up 0 or the source errors (%s) for %s", kinds, name)
	}
	return h
}

// waitSourceHealthy waits (up to wait) for status to say the source is
// healthy again, with nothing left of the outage, and /metrics
// sluice_source_up 1.
func waitSourceHealthy(t *testing.T, base, name, outage string, wait time.Duration) {
	t.Helper()
	upAt := time.Now()
	var h connector.SourceHealth
	eventually(t, wait, "status to say the source is healthy again", func() bool {
		h, _ = sourceHealthOf(t, base, name)
		return h.State == connector.SourceHealthy
	})
	t.Logf("%s: healthy %v after the server was back", outage, time.Since(upAt).Round(100*time.Millisecond))
	if h.LastError != "" || h.Errors != 0 || !h.Since.IsZero() {
		t.Fatalf("healthy again, but source %+v still shows the outage", h)
	}
	if m := metricsText(t, base); !strings.Contains(m, fmt.Sprintf("sluice_source_up{pipeline=%q} 1", name)) {
		t.Fatalf("/metrics lacks sluice_source_up 1 for %s after recovery", name)
	}
}

// metricsText reads the admin server's /metrics.
func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestKafkaClusterGoneStopsThePipelineAfterMaxRetryTime: the pipeline's
// only broker goes away for good (connections reset, new ones refused).
// Once the consumer group's session gives up, reads fail: status says the
// read is retried, /metrics counts it, and once the failures have gone on
// past max_retry_time the pipeline stops failed with an error naming the
// topics, the group and the broker's refusal, instead of stalling in
// silence forever. What it wrote before stays committed.
func TestKafkaClusterGoneStopsThePipelineAfterMaxRetryTime(t *testing.T) {
	const n, name, maxRetry = 500, "kafka-gone-stops", 5 * time.Second
	pb := startProxiedBroker(t)
	createTopic(t, pb.brokers, "in", 3)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [in], group: %s}
format: {value: json}
max_retry_time: 5s
sink:
  file: {path: %s}
`, name, pb.brokers[0], name, out))
	base := serveAdmin(t, context.Background(), b, 200*time.Millisecond, testLogger(t))
	pb.produceDirect(t, "in", 0, n)
	eventually(t, 30*time.Second, "the records written", func() bool { return b.Pipeline.Status().RecordsOut == n })
	adm := adminClientWith(t, pb.brokers, pb.direct)
	waitCommittedToEnd(t, adm, name, "in", 30*time.Second)

	downAt := time.Now()
	if err := pb.proxy.Refuse(); err != nil {
		t.Fatal(err)
	}
	pb.proxy.ResetAll()
	eventually(t, 60*time.Second, "status to say the read is retried", func() bool {
		d := pipelineDetail(t, base, name)
		if d.State == pipeline.StateFailed {
			return true // stopped already: the error is checked below
		}
		for _, op := range d.Retrying {
			if op.What == "read" && d.Degraded {
				t.Logf("retrying %s %v after the broker went: %s", op.What, op.Since.Sub(downAt).Round(100*time.Millisecond), op.LastError)
				return true
			}
		}
		return false
	})
	readRetries := regexp.MustCompile(`sluice_retries_total\{pipeline="` + name + `",stage="read"\} [1-9]`)
	if m := metricsText(t, base); !readRetries.MatchString(m) {
		t.Fatalf("/metrics counts no read retry for %s", name)
	}
	eventually(t, maxRetry+90*time.Second, "the pipeline to stop failed", func() bool { return b.Pipeline.Status().State == pipeline.StateFailed })
	stoppedAfter := time.Since(downAt)
	t.Logf("stopped %v after the broker went", stoppedAfter.Round(100*time.Millisecond))
	if stoppedAfter < maxRetry {
		t.Fatalf("stopped %v after the broker went, before max_retry_time (%v)", stoppedAfter, maxRetry)
	}
	err := stop()
	t.Logf("the pipeline stopped with: %v", err)
	for _, want := range []string{"reading from Kafka topics in (group " + name, "max_retry_time 5s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("the pipeline stopped with %v; want it to say %q", err, want)
		}
	}
	if got := len(readLines(t, out)); got != n {
		t.Fatalf("%d records at the sink, want the %d written before the broker went", got, n)
	}
}
