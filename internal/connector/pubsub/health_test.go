package pubsub

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/faultproxy"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// metricValue is a gauge's or a counter's value.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	_ = m.Write(&d)
	return d.GetGauge().GetValue() + d.GetCounter().GetValue()
}

// rpc plays one call through the handler as gRPC would.
type rpc struct {
	h   *serverHealth
	ctx context.Context
}

func startCall(h *serverHealth, method string) rpc {
	return rpc{h, h.TagRPC(context.Background(), &stats.RPCTagInfo{FullMethodName: method})}
}

func (c rpc) header()  { c.h.HandleRPC(c.ctx, &stats.InHeader{Client: true}) }
func (c rpc) payload() { c.h.HandleRPC(c.ctx, &stats.InPayload{Client: true}) }
func (c rpc) end(err error) {
	c.h.HandleRPC(c.ctx, &stats.End{Client: true, Error: err})
}

const getSubscriptionMethod = "/google.pubsub.v1.Subscriber/GetSubscription"

// What the client's calls show of the server decides the source's health:
// a stream that cannot be opened or a call with no answer makes it
// unreachable, any answer heals that; the server refusing the streaming
// pull makes it unreachable with the reason until a stream is served; an
// idle subscription (pings answered) and a stream the server recycles
// after serving it are healthy; the client giving up on a call says
// nothing.
func TestServerHealthFollowsCalls(t *testing.T) {
	const pipeline = "pubsub-health-unit"
	t0 := time.Date(2026, 12, 4, 12, 3, 14, 0, time.UTC)
	now := t0
	h := newServerHealth(pipeline, "projects/p/subscriptions/s", nil)
	h.now = func() time.Time { return now }
	refused := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:8085: connect: connection refused"`)
	counter := func(kind string) float64 { return metricValue(metrics.SourceErrors.WithLabelValues(pipeline, kind)) }
	expect := func(what, state string, since time.Time, errs int64, lastHas string) {
		t.Helper()
		got := h.snapshot()
		if got.State != state || !got.Since.Equal(since) || got.Errors != errs || !strings.Contains(got.LastError, lastHas) || (lastHas == "" && got.LastError != "") {
			t.Fatalf("%s: health %+v; want %s since %v, %d errors, last error with %q", what, got, state, since, errs, lastHas)
		}
		up := 1.0
		if state == connector.SourceUnreachable {
			up = 0
		}
		if v := metricValue(metrics.SourceUp.WithLabelValues(pipeline)); v != up {
			t.Fatalf("%s: sluice_source_up %v, want %v", what, v, up)
		}
	}

	expect("before any call", connector.SourceHealthy, time.Time{}, 0, "")
	pull := startCall(h, streamingPullMethod)
	pull.header()
	pull.payload()
	now = now.Add(30 * time.Second)
	pull.payload() // the answer to a ping: the subscription is idle
	expect("idle subscription", connector.SourceHealthy, time.Time{}, 0, "")
	pull.end(status.Error(codes.Unavailable, "the server ended the stream"))
	expect("a served stream recycled", connector.SourceHealthy, time.Time{}, 0, "")
	startCall(h, streamingPullMethod).end(status.Error(codes.Canceled, "grpc: the client connection is closing"))
	startCall(h, getSubscriptionMethod).end(context.Canceled)
	expect("the client closing", connector.SourceHealthy, time.Time{}, 0, "")

	down := now
	before := counter("connect")
	startCall(h, streamingPullMethod).end(refused)
	now = now.Add(time.Second)
	startCall(h, getSubscriptionMethod).end(refused)
	expect("the server refusing connections", connector.SourceUnreachable, down, 2, "GetSubscription projects/p/subscriptions/s: rpc error: code = Unavailable desc = connection error")
	if after := counter("connect"); after != before+2 {
		t.Fatalf("sluice_source_errors_total{kind=connect} went from %v to %v on two refused calls", before, after)
	}
	// A stream opened on a connection that then broke, before the server
	// answered it, is a failure too.
	startCall(h, streamingPullMethod).end(status.Error(codes.Internal, "stream terminated by RST_STREAM"))
	expect("a stream broken before its answer", connector.SourceUnreachable, down, 3, "RST_STREAM")

	// The server back on one connection, another still failing: an
	// answer with an error code is an answer.
	now = now.Add(time.Second)
	startCall(h, getSubscriptionMethod).end(status.Error(codes.PermissionDenied, "no pubsub.subscriptions.get"))
	expect("the probe answered with an error code", connector.SourceDegraded, down, 3, "RST_STREAM")
	now = now.Add(time.Second)
	stale := now
	startCall(h, streamingPullMethod).end(refused)
	expect("answers and failures", connector.SourceDegraded, down, 4, "connection refused")
	now = now.Add(settle)
	expect("failures only, for settle", connector.SourceUnreachable, stale, 4, "connection refused")
	startCall(h, streamingPullMethod).end(refused)
	expect("failures only", connector.SourceUnreachable, stale, 5, "connection refused")
	startCall(h, getSubscriptionMethod).end(nil)
	now = now.Add(settle - time.Millisecond)
	expect("answered, failures within settle", connector.SourceDegraded, down, 5, "connection refused")
	now = now.Add(time.Millisecond)
	expect("answered, no failure for settle", connector.SourceHealthy, time.Time{}, 0, "")

	// A network partition: the probe gets no answer in time.
	cut := now
	before = counter("request")
	startCall(h, getSubscriptionMethod).end(status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	expect("the probe unanswered", connector.SourceUnreachable, cut, 1, "GetSubscription projects/p/subscriptions/s: rpc error: code = DeadlineExceeded")
	if after := counter("request"); after != before+1 {
		t.Fatalf("sluice_source_errors_total{kind=request} went from %v to %v on an unanswered probe", before, after)
	}
	now = now.Add(time.Second)
	startCall(h, getSubscriptionMethod).end(nil)
	now = now.Add(settle)
	expect("the probe answered", connector.SourceHealthy, time.Time{}, 0, "")

	// The subscription deleted: the server is there, but refuses it.
	gone := now
	before = counter("refused")
	deleted := startCall(h, streamingPullMethod)
	deleted.header()
	deleted.end(status.Error(codes.NotFound, "Subscription does not exist"))
	h.receiveStopped(status.Error(codes.NotFound, "Subscription does not exist"))
	if after := counter("refused"); after != before+2 {
		t.Fatalf("sluice_source_errors_total{kind=refused} went from %v to %v on a refused stream and Receive", before, after)
	}
	now = now.Add(10 * time.Second)
	startCall(h, getSubscriptionMethod).end(status.Error(codes.NotFound, "Subscription does not exist"))
	startCall(h, getSubscriptionMethod).end(nil)
	startCall(h, streamingPullMethod).header()
	now = now.Add(settle)
	expect("answers, but the subscription refused", connector.SourceUnreachable, gone, 2, "receiving from projects/p/subscriptions/s: rpc error: code = NotFound desc = Subscription does not exist")
	startCall(h, streamingPullMethod).payload()
	now = now.Add(settle)
	expect("a stream served again", connector.SourceHealthy, time.Time{}, 0, "")
}

// The probe goes out only after the server was silent for probeAfter, and
// while it goes unanswered, every probeRetry.
func TestServerHealthProbesOnlyASilentServer(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newServerHealth("pubsub-health-probe", "projects/p/subscriptions/s", nil)
	h.now = func() time.Time { return now }
	h.heard = now
	due := func() bool { d, _ := h.probeDue(); return d }
	now = now.Add(probeAfter - time.Second)
	if due() {
		t.Fatal("probe due before the server was silent for probeAfter")
	}
	pull := startCall(h, streamingPullMethod)
	now = now.Add(2 * time.Second)
	pull.payload()
	now = now.Add(probeAfter - time.Second)
	if due() {
		t.Fatal("probe due although a stream was answered within probeAfter")
	}
	now = now.Add(time.Second)
	if d, timeout := h.probeDue(); !d || timeout != probeTimeout {
		t.Fatalf("probe due %v (timeout %v) after probeAfter of silence; want due, %v", d, timeout, probeTimeout)
	}
	if due() {
		t.Fatal("probe due again at once")
	}
	now = now.Add(probeRetry)
	if !due() {
		t.Fatal("probe not due probeRetry after an unanswered one")
	}
	// A failure after an answer: probe at once (within probeRetry of the
	// last probe), to see whether the server is there.
	startCall(h, getSubscriptionMethod).end(nil)
	now = now.Add(probeRetry)
	startCall(h, streamingPullMethod).end(status.Error(codes.Unavailable, "connection refused"))
	if !due() {
		t.Fatal("probe not due after a failure")
	}
}

// An error text could quote what the client was given: status shows no
// secret of the credentials file.
func TestServerHealthMasksSecrets(t *testing.T) {
	h := newServerHealth("pubsub-health-mask", "projects/p/subscriptions/s", []string{"", "1//refresh-tok"})
	startCall(h, streamingPullMethod).end(status.Error(codes.Unauthenticated, "token 1//refresh-tok was revoked"))
	got := h.snapshot()
	if strings.Contains(got.LastError, "refresh-tok") || !strings.Contains(got.LastError, config.Redacted) {
		t.Fatalf("last error %q shows the secret", got.LastError)
	}
}

// proxiedPubSub is pstest with a topic and a subscription, reached through
// a fault proxy.
type proxiedPubSub struct {
	srv   *pstest.Server
	proxy *faultproxy.Proxy
	topic string
	sub   string
}

func startProxiedPubSub(t *testing.T) proxiedPubSub {
	t.Helper()
	srv := pstest.NewServerWithAddress("127.0.0.1:0")
	t.Cleanup(func() { srv.Close() })
	proxy, err := faultproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p := proxiedPubSub{srv: srv, proxy: proxy, topic: "projects/demo/topics/health", sub: "projects/demo/subscriptions/health"}
	ctx := context.Background()
	if _, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: p.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.GServer.CreateSubscription(ctx, &pubsubpb.Subscription{Name: p.sub, Topic: p.topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	return p
}

// With a real client against pstest: the server down (connections reset
// and refused) or cut off (nothing answers) makes the source unreachable
// with the reason, and healthy again when it is back, with the message
// published meanwhile delivered; an idle subscription stays healthy; the
// subscription deleted makes it unreachable with the server's NotFound,
// although the server answers.
func TestSourceHealthFromARealClient(t *testing.T) {
	ps := startProxiedPubSub(t)
	src, err := NewSource(context.Background(), config.PubSubSource{Subscription: ps.sub, EmulatorHost: ps.proxy.Addr(), KeyFrom: config.KeyFromNone,
		Streams: 2, MaxOutstandingMessages: 100, MaxOutstandingBytes: 1 << 20, MaxAckExtension: 10 * time.Second}, SourceOptions{Pipeline: "pubsub-health-real"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	src.health.mu.Lock()
	src.health.probeAfter, src.health.probeTimeout, src.health.probeRetry = 500*time.Millisecond, 2*time.Second, 200*time.Millisecond
	src.health.mu.Unlock()
	r, err := src.OpenReader(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	read := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		recs, err := r.Read(ctx, 10)
		if err != nil || len(recs) != 1 || string(recs[0].Value) != want {
			t.Fatalf("read %v, %v; want the message %q", recs, err, want)
		}
		r.Ack(recs)
	}
	waitFor := func(what string, cond func(connector.SourceHealth) bool) connector.SourceHealth {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			h := src.SourceHealth()
			if cond(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: health still %+v", what, h)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	healthy := func(h connector.SourceHealth) bool { return h.State == connector.SourceHealthy }
	unreachable := func(why string) func(connector.SourceHealth) bool {
		return func(h connector.SourceHealth) bool {
			return h.State == connector.SourceUnreachable && strings.Contains(h.LastError, why) && h.Errors > 0
		}
	}

	ps.srv.Publish(ps.topic, []byte("before"), nil)
	read("before")
	// Idle for several probe periods: the probes are answered.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if h := src.SourceHealth(); !healthy(h) {
			t.Fatalf("idle subscription, server up: %+v", h)
		}
	}

	for _, tc := range []struct {
		outage string
		why    string
		start  func() error
	}{
		{"down", "connection refused", func() error {
			err := ps.proxy.Refuse()
			ps.proxy.ResetAll()
			return err
		}},
		{"partition", "DeadlineExceeded", ps.proxy.BlackHole},
	} {
		downAt := time.Now()
		if err := tc.start(); err != nil {
			t.Fatal(err)
		}
		ps.srv.Publish(ps.topic, []byte("during "+tc.outage), nil)
		h := waitFor(tc.outage+": unreachable", unreachable(tc.why))
		if h.Since.Before(downAt) {
			t.Fatalf("%s: unreachable since %v, before the outage began at %v", tc.outage, h.Since, downAt)
		}
		t.Logf("%s: unreachable after %v: %s", tc.outage, time.Since(downAt).Round(time.Millisecond), h.LastError)
		if err := ps.proxy.Pass(); err != nil {
			t.Fatal(err)
		}
		upAt := time.Now()
		waitFor(tc.outage+": healthy again", healthy)
		t.Logf("%s: healthy %v after the server was back", tc.outage, time.Since(upAt).Round(time.Millisecond))
		read("during " + tc.outage)
	}

	// pstest goes on serving the open streams of a deleted subscription;
	// they are cut so that the client opens new ones.
	if _, err := ps.srv.GServer.DeleteSubscription(context.Background(), &pubsubpb.DeleteSubscriptionRequest{Subscription: ps.sub}); err != nil {
		t.Fatal(err)
	}
	ps.proxy.ResetAll()
	h := waitFor("subscription deleted", unreachable("NotFound"))
	t.Logf("deleted: %s", h.LastError)
	// The probe's answers say the server is there; the subscription is
	// still gone.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if h := src.SourceHealth(); h.State != connector.SourceUnreachable {
			t.Fatalf("subscription deleted, server answering: %+v", h)
		}
	}
}
