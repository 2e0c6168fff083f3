package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startMetrics serves the brokers' own metrics at /metrics.
func (s *Stack) startMetrics() error {
	addr := net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.MetricsPort))
	l, err := net.Listen("tcp", addr)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		// The metrics are an aid, not the stack: a taken port (a second
		// stack, a test) moves them to a free one, printed with the
		// other endpoints, rather than stopping the broker.
		s.opts.Logger.Warn("broker metrics port in use, serving them on a free port instead (--metrics-port)", "addr", addr)
		l, err = net.Listen("tcp", net.JoinHostPort(s.opts.Host, "0"))
	}
	if err != nil {
		return fmt.Errorf("serving broker metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.BrokerMetrics.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("serving broker metrics", "err", err)
		}
	}()
	s.MetricsURL = "http://" + l.Addr().String() + "/metrics"
	s.endpoints = append(s.endpoints, Endpoint{Name: "Broker metrics", Addr: s.MetricsURL})
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return nil
}
