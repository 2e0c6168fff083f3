package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	gax "github.com/googleapis/gax-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// The client retries a server it cannot reach without a word, and a
// server behind a network partition says nothing at all: its streams just
// wait. A stream the server serves is answered at least every 30 s (the
// client pings it, the server answers), so a source that heard nothing for
// probeAfter asks the server for the subscription; any answer, even an
// error code, says the server is there.
const (
	probeAfter   = 10 * time.Second
	probeTimeout = 5 * time.Second
	// probeRetry spaces the probes while they go unanswered.
	probeRetry = 2 * time.Second
	// settle is how long failures and answers count together: the source
	// is degraded while both come within settle of each other, and
	// healthy once the server answered and settle passed without failure.
	settle = 5 * time.Second
)

const streamingPullMethod = "/google.pubsub.v1.Subscriber/StreamingPull"

// serverHealth is a gRPC stats handler on the source's client that follows
// every call to the Pub/Sub server. A streaming pull that could not be
// opened, or broke before the server answered it, and a call that got no
// answer, are failures; any answer, even with an error code, is the server
// being there. A stream that breaks after it was served is no failure by
// itself (the server ends streams now and then; the client opens another
// at once, and that one says). An idle subscription is healthy: its
// streams are answered when pinged, and so is the probe.
//
// The client spreads its calls over a pool of connections, which it
// cannot name to a stats handler, so health is judged from the run of
// events: failures and no answer since is unreachable; failures and
// answers within settle of each other is degraded (some connections fail,
// others answer, as one does after an outage until the client reconnects
// it); answers and no failure for settle is healthy again.
//
// The server refusing the streaming pull (the subscription was deleted,
// permission denied: the client does not retry that, Receive returns) is
// unreachable with the server's reason, whatever else answers, until a
// stream is served again.
type serverHealth struct {
	now          func() time.Time
	subscription string
	secrets      []string // masked in error texts
	up           prometheus.Gauge
	errs         map[string]prometheus.Counter // by kind: connect, request, refused

	mu sync.Mutex
	// since is when the source stopped being healthy; zero while it is.
	since time.Time
	// refused: the failure includes the server refusing the streaming
	// pull, which only a served stream clears.
	refused bool
	// errors counts failures since the source was last healthy; last is
	// the latest failure's text.
	errors int64
	last   string
	heard  time.Time // the server's latest answer
	// failed is the latest failure; failedUnanswered the first failure
	// since the latest answer (zero when the latest event is an answer).
	failed, failedUnanswered time.Time
	probed                   time.Time // the latest probe sent
	// probeAfter, probeTimeout and probeRetry are the constants, shorter
	// in tests.
	probeAfter, probeTimeout, probeRetry time.Duration
}

func newServerHealth(pipeline, subscription string, secrets []string) *serverHealth {
	h := &serverHealth{
		now:          time.Now,
		subscription: subscription,
		up:           metrics.SourceUp.WithLabelValues(pipeline),
		errs:         map[string]prometheus.Counter{},
		probeAfter:   probeAfter,
		probeTimeout: probeTimeout,
		probeRetry:   probeRetry,
	}
	for _, kind := range []string{"connect", "request", "refused"} {
		h.errs[kind] = metrics.SourceErrors.WithLabelValues(pipeline, kind)
	}
	for _, s := range secrets {
		if s != "" {
			h.secrets = append(h.secrets, s)
		}
	}
	h.heard = h.now()
	h.up.Set(1)
	return h
}

// call is what the handler knows of one call (one attempt).
type call struct {
	method string
	served atomic.Bool // a streaming pull got a response
}

type callKey struct{}

// TagRPC implements stats.Handler.
func (h *serverHealth) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, callKey{}, &call{method: info.FullMethodName})
}

// HandleRPC implements stats.Handler. It is called from the goroutines of
// the call's sender, receiver and transport, concurrently.
func (h *serverHealth) HandleRPC(ctx context.Context, s stats.RPCStats) {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil || !s.IsClient() {
		return
	}
	switch ev := s.(type) {
	case *stats.InHeader:
		h.answered()
	case *stats.InPayload:
		if c.method == streamingPullMethod {
			c.served.Store(true)
			h.served()
		} else {
			h.answered()
		}
	case *stats.End:
		h.ended(c, ev.Error)
	}
}

// TagConn implements stats.Handler.
func (h *serverHealth) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

// HandleConn implements stats.Handler: a connection begins before the
// server said a word, so it tells nothing.
func (h *serverHealth) HandleConn(context.Context, stats.ConnStats) {}

// ended judges a call by how it ended.
func (h *serverHealth) ended(c *call, err error) {
	if err == nil {
		h.answered()
		return
	}
	code := status.Code(err)
	if code == codes.Canceled || errors.Is(err, context.Canceled) {
		return // the client closing or giving up says nothing of the server
	}
	stream := c.method == streamingPullMethod
	describe := func() string {
		return fmt.Sprintf("%s %s: %v", c.method[strings.LastIndexByte(c.method, '/')+1:], h.subscription, err)
	}
	switch {
	case stream && refusal(code):
		h.fail("refused", describe(), true)
	case stream && c.served.Load():
		// Served, then ended: the stream opened next says.
	case code == codes.DeadlineExceeded:
		h.fail("request", describe(), false)
	case stream || code == codes.Unavailable:
		h.fail("connect", describe(), false)
	default:
		h.answered() // with an error code: the server is there
	}
}

// refusal says the server refused the subscription to a streaming pull,
// which the client does not retry: Receive returns it.
func refusal(code codes.Code) bool {
	switch code {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition,
		codes.InvalidArgument, codes.OutOfRange, codes.Unimplemented, codes.ResourceExhausted:
		return true
	}
	return false
}

// receiveStopped is Receive returning err: the subscriber stopped, and only
// a stream served again makes the source healthy.
func (h *serverHealth) receiveStopped(err error) {
	kind := "refused"
	if code := status.Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded {
		kind = "connect"
	}
	h.fail(kind, fmt.Sprintf("receiving from %s: %v", h.subscription, err), true)
}

// answered: the server answered a call, so it is there.
func (h *serverHealth) answered() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard, h.failedUnanswered = h.now(), time.Time{}
	h.update(h.heard)
}

// served: a streaming pull got messages or the answer to a ping, so the
// subscription is served.
func (h *serverHealth) served() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard, h.failedUnanswered, h.refused = h.now(), time.Time{}, false
	h.update(h.heard)
}

func (h *serverHealth) fail(kind, text string, refused bool) {
	h.errs[kind].Inc()
	text = h.mask(text)
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if h.since.IsZero() {
		h.since = now
	}
	if h.failedUnanswered.IsZero() {
		h.failedUnanswered = now
	}
	h.failed = now
	h.refused = h.refused || refused
	h.errors++
	h.last = text
	h.update(now)
}

// update recomputes the state at now, and clears the failure once the
// source is healthy again; h.mu is held.
func (h *serverHealth) update(now time.Time) (state string, since time.Time) {
	switch {
	case h.since.IsZero():
		state = connector.SourceHealthy
	case h.refused:
		state, since = connector.SourceUnreachable, h.since
	case !h.failedUnanswered.IsZero():
		// Failures since the latest answer: degraded while answers
		// still came lately, unreachable since they stopped.
		if h.heard.After(h.since) && now.Sub(h.heard) < settle {
			state, since = connector.SourceDegraded, h.since
		} else {
			state, since = connector.SourceUnreachable, h.failedUnanswered
		}
	case now.Sub(h.failed) < settle:
		state, since = connector.SourceDegraded, h.since
	default:
		h.since, h.errors, h.last = time.Time{}, 0, ""
		state = connector.SourceHealthy
	}
	if state == connector.SourceUnreachable {
		h.up.Set(0)
	} else {
		h.up.Set(1)
	}
	return state, since
}

// snapshot implements the source's connector.HealthReporter.
func (h *serverHealth) snapshot() connector.SourceHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	state, since := h.update(h.now())
	return connector.SourceHealth{State: state, Since: since, LastError: h.last, Errors: h.errors}
}

// probeDue says whether to probe now, and if so takes the turn and returns
// how long to wait for the answer: the server was silent for probeAfter,
// or a call failed since its latest answer, and no probe went out in the
// last probeRetry.
func (h *serverHealth) probeDue() (bool, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if (now.Sub(h.heard) < h.probeAfter && h.failedUnanswered.IsZero()) || now.Sub(h.probed) < h.probeRetry {
		return false, 0
	}
	h.probed = now
	return true, h.probeTimeout
}

// mask replaces the source's secrets in an error text.
func (h *serverHealth) mask(s string) string {
	for _, secret := range h.secrets {
		s = strings.ReplaceAll(s, secret, config.Redacted)
	}
	return s
}

// probe asks the server for the subscription whenever it has been silent
// while a reader is open, until ctx ends. The answer is judged by the
// stats handler, as every call's.
func (s *Source) probe(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.readers.Load() == 0 {
			continue
		}
		due, timeout := s.health.probeDue()
		if !due {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		// One attempt: each retry would count as a failure of its own.
		_, _ = s.client.SubscriptionAdminClient.GetSubscription(pctx,
			&pubsubpb.GetSubscriptionRequest{Subscription: s.cfg.SubscriptionPath()}, gax.WithRetry(nil))
		cancel()
	}
}
