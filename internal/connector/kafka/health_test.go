package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metricValue is a gauge's or a counter's value.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	_ = m.Write(&d)
	return d.GetGauge().GetValue() + d.GetCounter().GetValue()
}

func broker(host string, port int32) kgo.BrokerMetadata {
	return kgo.BrokerMetadata{NodeID: port, Host: host, Port: port}
}

// What the client reports of each broker decides the source's health:
// every broker failing is unreachable, some is degraded, one answer from
// a failing broker clears it; an idle topic (answers, no records) is
// healthy, and what only says the client is closing changes nothing.
func TestBrokerHealthFollowsConnectionsAndAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 3, 14, 0, time.UTC)
	now := t0
	refused := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	a, b := broker("10.0.0.1", 9092), broker("10.0.0.2", 9092)
	fetch := kmsg.Fetch.Int16()

	h := newBrokerHealth("health-unit", nil)
	h.now = func() time.Time { return now }
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
		if v := metricValue(metrics.SourceUp.WithLabelValues("health-unit")); v != up {
			t.Fatalf("%s: sluice_source_up %v, want %v", what, v, up)
		}
	}

	expect("before any connection", connector.SourceHealthy, time.Time{}, 0, "")
	h.OnBrokerConnect(a, time.Millisecond, nil, nil)
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{})
	now = now.Add(time.Minute)
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{}) // an empty fetch: the topic is idle
	expect("idle topic", connector.SourceHealthy, time.Time{}, 0, "")

	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{ReadErr: kgo.ErrClientClosed})
	h.OnBrokerConnect(a, 0, nil, fmt.Errorf("unable to dial: %w", context.Canceled))
	expect("the client closing", connector.SourceHealthy, time.Time{}, 0, "")

	down := now
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{ReadErr: errors.New("EOF")})
	now = now.Add(2 * time.Second)
	h.OnBrokerConnect(a, 0, nil, refused)
	now = now.Add(40 * time.Second)
	h.OnBrokerConnect(a, 0, nil, refused)
	expect("the only broker refusing", connector.SourceUnreachable, down, 3, "connection refused")
	before := metricValue(metrics.SourceErrors.WithLabelValues("health-unit", "connect"))
	h.OnBrokerConnect(a, 0, nil, refused)
	if after := metricValue(metrics.SourceErrors.WithLabelValues("health-unit", "connect")); after != before+1 {
		t.Fatalf("sluice_source_errors_total{kind=connect} went from %v to %v on a refused connection", before, after)
	}

	now = now.Add(time.Second)
	h.OnBrokerConnect(a, time.Millisecond, nil, nil)
	expect("the broker back", connector.SourceHealthy, time.Time{}, 0, "")

	// Two brokers, one down: degraded; both down: unreachable since the
	// second went.
	h.OnBrokerE2E(b, fetch, kgo.BrokerE2E{})
	firstDown := now
	h.OnBrokerConnect(b, 0, nil, refused)
	now = now.Add(5 * time.Second)
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{})
	expect("one of two brokers down", connector.SourceDegraded, firstDown, 1, "connection refused")
	secondDown := now
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{ReadErr: errors.New("read tcp: i/o timeout")})
	expect("both down", connector.SourceUnreachable, secondDown, 2, "Fetch request to 10.0.0.1:9092: read tcp: i/o timeout")

	// a answers again; b was removed from the cluster and is not tried
	// any more: once its failure is stale it no longer counts.
	now = now.Add(time.Second)
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{})
	expect("b still failing, a back", connector.SourceDegraded, firstDown, 2, "i/o timeout")
	now = now.Add(healthStale)
	h.OnBrokerE2E(a, fetch, kgo.BrokerE2E{})
	expect("b's failure stale", connector.SourceHealthy, time.Time{}, 0, "")

	// Nothing heard for longer than healthStale (a request that hangs)
	// keeps the last state rather than calling it healthy.
	h.OnBrokerConnect(a, 0, nil, refused)
	stuck := now
	now = now.Add(10 * time.Minute)
	expect("silence after a failure", connector.SourceUnreachable, stuck, 1, "connection refused")
}

// A SASL flow's error could quote what it was given: status shows no
// secret.
func TestBrokerHealthMasksSecrets(t *testing.T) {
	h := newBrokerHealth("health-mask", &config.SASL{Mechanism: "PLAIN", Username: "ana", Password: "hunter2"})
	h.OnBrokerConnect(broker("k", 9092), 0, nil, errors.New("SASL: bad password hunter2 for ana"))
	got := h.snapshot()
	if strings.Contains(got.LastError, "hunter2") || !strings.Contains(got.LastError, config.Redacted) {
		t.Fatalf("last error %q shows the password", got.LastError)
	}
}

// With a real client: a broker address that refuses connections makes the
// source unreachable with the dial error; a broker listening there makes
// it healthy again.
func TestBrokerHealthFromARealClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	h := newBrokerHealth("health-real", nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.WithHooks(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = cl.Ping(ctx)
	cancel()
	got := h.snapshot()
	if got.State != connector.SourceUnreachable || !strings.Contains(got.LastError, "dial tcp "+addr) || !strings.Contains(got.LastError, "connection refused") || got.Errors == 0 || got.Since.IsZero() {
		t.Fatalf("no broker listening: health %+v; want unreachable with the dial error", got)
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	t.Cleanup(c.Close)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping once the broker listens: %v", err)
	}
	if got := h.snapshot(); got.State != connector.SourceHealthy || got.LastError != "" || got.Errors != 0 {
		t.Fatalf("broker listening: health %+v; want healthy", got)
	}
}
