package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/faultproxy"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// pubsubHealthRun is a Pub/Sub -> file pipeline reading pstest through a
// fault proxy, with its admin API.
type pubsubHealthRun struct {
	name   string
	srv    *pstest.Server
	client *pubsub.Client // straight to pstest
	proxy  *faultproxy.Proxy
	b      *assembly.Built
	stop   func() error
	base   string // the admin API
	out    string // the file sink's path
}

// startPubSubHealthRun starts the run; settings are more top-level lines
// of the pipeline's YAML ("max_retry_time: 5s").
func startPubSubHealthRun(t *testing.T, name string, settings ...string) pubsubHealthRun {
	t.Helper()
	srv, client := startPubSub(t, name, name+"-sluice")
	proxy, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	out := filepath.Join(t.TempDir(), "out.jsonl")
	// streams: 10 because pstest delivers some 75 messages a second
	// per stream.
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
%s
source:
  pubsub: {project: demo, subscription: %s-sluice, emulator_host: %s, streams: 10, max_ack_extension: 10s}
format: {value: json}
sink:
  file: {path: %s}
`, name, strings.Join(settings, "\n"), name, proxy.Addr(), out))
	base := serveAdmin(t, context.Background(), b, 200*time.Millisecond, testLogger(t))
	return pubsubHealthRun{name: name, srv: srv, client: client, proxy: proxy, b: b, stop: stop, base: base, out: out}
}

// publishIDs publishes {"id": i} for i in [from, from+n).
func (r pubsubHealthRun) publishIDs(t *testing.T, from, n int) {
	t.Helper()
	p := r.client.Publisher(r.name)
	defer p.Stop()
	var results []*pubsub.PublishResult
	for i := from; i < from+n; i++ {
		results = append(results, p.Publish(context.Background(), &pubsub.Message{Data: fmt.Appendf(nil, `{"id":%d}`, i)}))
	}
	for _, res := range results {
		if _, err := res.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPubSubSourceUnreachableShownInStatus: the Pub/Sub server goes down
// (connections reset, new ones refused) or is cut off (nothing answers).
// The client retries without a word and messages stop, as on an idle
// subscription; status and /metrics say the source is unreachable, since
// when and why. When the server is back, status is healthy again by
// itself and every message published meanwhile reaches the sink.
func TestPubSubSourceUnreachableShownInStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		why  []string // what the last error says, one of these
	}{
		{"down", []string{"connection refused"}},
		// Nothing answers the probe in time.
		{"partition", []string{"DeadlineExceeded", "deadline exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) { pubsubOutageShown(t, tc.name, tc.why) })
	}
}

func pubsubOutageShown(t *testing.T, outage string, why []string) {
	const n = 100
	r := startPubSubHealthRun(t, "ps-health-"+outage)
	r.publishIDs(t, 0, n/2)
	eventually(t, 30*time.Second, "the first half written", func() bool { return r.b.Pipeline.Status().RecordsOut == n/2 })
	waitAllAcked(t, r.srv, 10*time.Second)
	if h, _ := sourceHealthOf(t, r.base, r.name); h.State != connector.SourceHealthy {
		t.Fatalf("server up, messages flowing: source %+v", h)
	}

	downAt := time.Now()
	if outage == "down" {
		if err := r.proxy.Refuse(); err != nil {
			t.Fatal(err)
		}
		r.proxy.ResetAll()
	} else if err := r.proxy.BlackHole(); err != nil {
		t.Fatal(err)
	}
	r.publishIDs(t, n/2, n/2) // the input goes on
	waitSourceUnreachable(t, r.base, r.name, outage, downAt, 40*time.Second, why, "connect|request")
	if got := r.b.Pipeline.Status().RecordsOut; got != n/2 {
		t.Fatalf("%d records out during the outage, want the %d from before it: the outage did not hit the pipeline", got, n/2)
	}

	if err := r.proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	waitSourceHealthy(t, r.base, r.name, outage, 40*time.Second)
	waitAllAcked(t, r.srv, 60*time.Second)
	if err := r.stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	seen := map[string]int{}
	for _, l := range readLines(t, r.out) {
		v, _ := l["value"].(map[string]any)
		seen[fmt.Sprint(v["id"])]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages at the sink, want %d (messages lost)", len(seen), n)
	}
}

// TestPubSubSubscriptionDeletedShownInStatus: an idle subscription with a
// server that answers stays healthy; once the subscription is deleted,
// Receive returns NotFound and Sluice retries it, which used to be only a
// warning in the log while status said healthy. Status shows the source
// unreachable with the server's reason.
func TestPubSubSubscriptionDeletedShownInStatus(t *testing.T) {
	r := startPubSubHealthRun(t, "ps-health-deleted")
	r.publishIDs(t, 0, 20)
	eventually(t, 30*time.Second, "the messages written", func() bool { return r.b.Pipeline.Status().RecordsOut == 20 })
	// Idle for longer than the source waits before it probes a silent
	// server (10 s): the probe is answered.
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if h, d := sourceHealthOf(t, r.base, r.name); h.State != connector.SourceHealthy || d.Degraded {
			t.Fatalf("idle subscription, server up: source %+v, degraded %v; want healthy", h, d.Degraded)
		}
	}

	downAt := time.Now()
	if err := r.client.SubscriptionAdminClient.DeleteSubscription(context.Background(),
		&pubsubpb.DeleteSubscriptionRequest{Subscription: "projects/demo/subscriptions/" + r.name + "-sluice"}); err != nil {
		t.Fatal(err)
	}
	// pstest goes on serving the streams already open on a deleted
	// subscription; cut them, for the client to open new ones.
	r.proxy.ResetAll()
	waitSourceUnreachable(t, r.base, r.name, "deleted", downAt, 30*time.Second, []string{"NotFound"}, "refused")
	// The server answers the client's other calls (the source's probe
	// included) and Sluice retries Receive: none of that hides the
	// refusal.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if h, _ := sourceHealthOf(t, r.base, r.name); h.State != connector.SourceUnreachable {
			t.Fatalf("subscription deleted, server answering: source %+v; want unreachable", h)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
}

// TestPubSubSubscriptionDeletedStopsThePipelineAfterMaxRetryTime: a
// deleted subscription was retried forever, the pipeline running (though
// degraded) for as long as nobody looked. Receive's refusal is a read
// failure now: status says the read is retried and why, the retries are
// counted, and once the refusals have gone on for max_retry_time the
// pipeline stops failed, naming the subscription and the NotFound. What
// was written before is all there.
func TestPubSubSubscriptionDeletedStopsThePipelineAfterMaxRetryTime(t *testing.T) {
	const maxRetry = 5 * time.Second
	r := startPubSubHealthRun(t, "ps-deleted-stops", "max_retry_time: 5s")
	r.publishIDs(t, 0, 20)
	eventually(t, 30*time.Second, "the messages written", func() bool { return r.b.Pipeline.Status().RecordsOut == 20 })
	waitAllAcked(t, r.srv, 10*time.Second)

	sub := "projects/demo/subscriptions/" + r.name + "-sluice"
	if err := r.client.SubscriptionAdminClient.DeleteSubscription(context.Background(),
		&pubsubpb.DeleteSubscriptionRequest{Subscription: sub}); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	// pstest goes on serving the streams already open on a deleted
	// subscription; cut them, for the client to open new ones.
	r.proxy.ResetAll()

	var retrying pipeline.RetryStatus
	eventually(t, 30*time.Second, "status to say the read is retried with the NotFound", func() bool {
		d := pipelineDetail(t, r.base, r.name)
		if d.State != pipeline.StateRunning || !d.Degraded {
			return false
		}
		for _, op := range d.Retrying {
			if op.What == "read" && strings.Contains(op.LastError, "NotFound") {
				retrying = op
				return true
			}
		}
		return false
	})
	t.Logf("retrying %s since %v after the deletion: %s", retrying.What, retrying.Since.Sub(downAt).Round(100*time.Millisecond), retrying.LastError)
	readRetries := regexp.MustCompile(`sluice_retries_total\{pipeline="` + r.name + `",stage="read"\} [1-9]`)
	if m := metricsText(t, r.base); !readRetries.MatchString(m) {
		t.Fatalf("/metrics counts no read retry for %s", r.name)
	}

	eventually(t, maxRetry+60*time.Second, "the pipeline to stop failed", func() bool { return r.b.Pipeline.Status().State == pipeline.StateFailed })
	stoppedAfter := time.Since(downAt)
	t.Logf("stopped %v after the deletion", stoppedAfter.Round(100*time.Millisecond))
	if stoppedAfter < maxRetry {
		t.Fatalf("stopped %v after the deletion, before max_retry_time (%v)", stoppedAfter, maxRetry)
	}
	err := r.stop()
	t.Logf("the pipeline stopped with: %v", err)
	for _, want := range []string{"reading from Pub/Sub subscription " + sub, "max_retry_time 5s", "code = NotFound"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("the pipeline stopped with %v; want it to say %q", err, want)
		}
	}
	if st := r.b.Pipeline.Status(); !strings.Contains(st.Error, "NotFound") {
		t.Fatalf("status error %q; want the NotFound", st.Error)
	}
	seen := map[string]int{}
	for _, l := range readLines(t, r.out) {
		v, _ := l["value"].(map[string]any)
		seen[fmt.Sprint(v["id"])]++
	}
	if len(seen) != 20 {
		t.Fatalf("%d distinct messages at the sink, want the 20 published before the deletion", len(seen))
	}
}
