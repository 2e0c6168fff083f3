package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// healthStale is how long a broker's last connection or answer counts for
// the source's health. A broker the client stopped talking to (gone from
// the metadata, or a seed it no longer needs) would otherwise keep the
// source degraded, or healthy, forever. The client retries a failing
// broker it needs within seconds, and its longest wait for an answer
// (JoinGroup: rebalance timeout plus overhead, 70 s by default) is below
// it.
const healthStale = 2 * time.Minute

// brokerHealth is a kgo hook, shared by every client of a source (one per
// consumer), that follows each broker's connections and answers: a failed
// dial or a request that got no answer is a failure, any answer (even an
// error code: the broker is there) or a new connection is a success. The
// source is unreachable when every broker heard from lately is failing,
// degraded when some are. It clears as soon as a broker answers again,
// without waiting for records, so an idle topic stays healthy.
type brokerHealth struct {
	now     func() time.Time
	secrets []string // masked in error texts
	up      prometheus.Gauge
	errs    map[string]prometheus.Counter // by kind: connect, request

	mu      sync.Mutex
	brokers map[string]*brokerState // by host:port
	// errors counts failures since the source was last healthy; last is
	// the latest failure's text.
	errors int64
	last   string
	state  string
	since  time.Time // when state began; zero while healthy
}

type brokerState struct {
	seen         time.Time // last event
	failingSince time.Time // zero while the last event was a success
}

func newBrokerHealth(pipeline string, sasl *config.SASL) *brokerHealth {
	h := &brokerHealth{
		now:     time.Now,
		up:      metrics.SourceUp.WithLabelValues(pipeline),
		errs:    map[string]prometheus.Counter{},
		brokers: map[string]*brokerState{},
		state:   connector.SourceHealthy,
	}
	for _, kind := range []string{"connect", "request"} {
		h.errs[kind] = metrics.SourceErrors.WithLabelValues(pipeline, kind)
	}
	if sasl != nil {
		for _, s := range []string{sasl.Password, sasl.ClientSecret} {
			if s != "" {
				h.secrets = append(h.secrets, s)
			}
		}
	}
	h.up.Set(1)
	return h
}

// OnBrokerConnect implements kgo.HookBrokerConnect. Its err covers the
// dial and the connection's setup (ApiVersions, SASL).
func (h *brokerHealth) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if ignoredHealthError(err) {
		return
	}
	h.record(meta, "connect", err, func() string { return err.Error() })
}

// OnBrokerE2E implements kgo.HookBrokerE2E: called after every request
// that was answered, or that failed on the wire.
func (h *brokerHealth) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	err := e2e.Err()
	if ignoredHealthError(err) {
		return
	}
	h.record(meta, "request", err, func() string {
		return fmt.Sprintf("%s request to %s: %v", kmsg.NameForKey(key), brokerAddr(meta), err)
	})
}

// ignoredHealthError: the client closing, or a caller giving up on its
// request, says nothing about the broker.
func ignoredHealthError(err error) bool {
	return err != nil && (errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed))
}

func brokerAddr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

func (h *brokerHealth) record(meta kgo.BrokerMetadata, kind string, err error, describe func() string) {
	now := h.now()
	addr := brokerAddr(meta)
	var text string
	if err != nil {
		h.errs[kind].Inc()
		text = h.mask(describe())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.brokers[addr]
	if b == nil {
		b = &brokerState{}
		h.brokers[addr] = b
	}
	b.seen = now
	if err == nil {
		b.failingSince = time.Time{}
	} else {
		if b.failingSince.IsZero() {
			b.failingSince = now
		}
		h.errors++
		h.last = text
	}
	h.update(now)
}

// update recomputes the state from the brokers heard from lately; h.mu
// is held.
func (h *brokerHealth) update(now time.Time) {
	var ok, failing int
	var earliest, latest time.Time
	for addr, b := range h.brokers {
		if now.Sub(b.seen) > healthStale {
			delete(h.brokers, addr)
			continue
		}
		if b.failingSince.IsZero() {
			ok++
			continue
		}
		failing++
		if earliest.IsZero() || b.failingSince.Before(earliest) {
			earliest = b.failingSince
		}
		if b.failingSince.After(latest) {
			latest = b.failingSince
		}
	}
	switch {
	case ok == 0 && failing == 0:
		return // nothing heard lately: no news is no change
	case failing == 0:
		h.state, h.since, h.errors, h.last = connector.SourceHealthy, time.Time{}, 0, ""
	case ok == 0:
		// Unreachable since the last broker that answered stopped.
		h.state, h.since = connector.SourceUnreachable, latest
	default:
		h.state, h.since = connector.SourceDegraded, earliest
	}
	if h.state == connector.SourceUnreachable {
		h.up.Set(0)
	} else {
		h.up.Set(1)
	}
}

// snapshot implements the source's connector.HealthReporter.
func (h *brokerHealth) snapshot() connector.SourceHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.update(h.now())
	return connector.SourceHealth{State: h.state, Since: h.since, LastError: h.last, Errors: h.errors}
}

// mask replaces the source's secrets in an error text: a SASL flow's
// error could quote what it was given.
func (h *brokerHealth) mask(s string) string {
	for _, secret := range h.secrets {
		s = strings.ReplaceAll(s, secret, config.Redacted)
	}
	return s
}
