// Package admin is Sluice's HTTP admin API and embedded web dashboard:
// pipeline status, live control (pause, resume, consumers, consumer
// properties, merge now), Prometheus metrics and health checks.
//
// Every response of the /v1 API is JSON; errors are {"error": "..."}.
// Reads are open; when a token is configured, every mutating request needs
// "Authorization: Bearer <token>" (401 otherwise), and a pipeline's
// configuration is shown only with it. Cross-origin browser requests that
// mutate are refused, and so is every request whose Host header is not
// this server's (DNS rebinding), so a web page elsewhere can neither steer
// a pipeline through the operator's browser nor read its status. Beyond
// loopback the server does not start without a token.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"golang.org/x/sync/errgroup"
)

// Pipeline is one pipeline the server shows and controls, with the
// connectors it was built from (their optional capabilities, such as a
// sink's merge, are found by type assertion).
type Pipeline struct {
	Pipeline *pipeline.Pipeline
	Config   config.Pipeline // shown redacted
	Source   connector.Source
	Sink     connector.Sink
}

// Options configure a Server.
type Options struct {
	Pipelines []Pipeline
	// Token, when set, is required as a bearer token by every mutating
	// endpoint, and to see a pipeline's configuration. Serve refuses a
	// non-loopback listener without one.
	Token string
	// AllowedHosts are further names the Host header may carry (a proxy's
	// or the machine's DNS name), besides the listen address and
	// localhost.
	AllowedHosts []string
	// MaxConsumers caps the consumers of one pipeline that adding at run
	// time can reach (a pipeline configured with more keeps its own
	// count as its cap); default 64.
	MaxConsumers int
	Logger       *slog.Logger
	// Gatherer is what /metrics serves; default metrics.Registry.
	Gatherer prometheus.Gatherer
	// ControlTimeout bounds a control request (add or remove a consumer,
	// change properties, merge); default 2 minutes.
	ControlTimeout time.Duration
	// SampleEvery is how often throughput and lag are sampled for the
	// charts and rates; default 1s.
	SampleEvery time.Duration
}

// Server serves the admin API and dashboard. Create with New; serve with
// Serve, or mount Handler elsewhere (then rates stay zero unless Sample
// is called).
type Server struct {
	opts    Options
	log     *slog.Logger
	order   []*entry
	byName  map[string]*entry
	handler http.Handler
	// listenAddr is what Serve listens on, for the Host check.
	listenAddr atomic.Pointer[string]
}

// entry is one pipeline with its throughput history.
type entry struct {
	Pipeline
	config  map[string]any // redacted, by YAML key
	history history
	// adding serializes adding consumers, so that the cap holds.
	adding sync.Mutex
}

// DefaultMaxConsumers is Options.MaxConsumers when unset.
const DefaultMaxConsumers = 64

// New checks opts and builds the server.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Gatherer == nil {
		opts.Gatherer = metrics.Registry
	}
	if opts.ControlTimeout <= 0 {
		opts.ControlTimeout = 2 * time.Minute
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = time.Second
	}
	if opts.MaxConsumers <= 0 {
		opts.MaxConsumers = DefaultMaxConsumers
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "admin"), byName: map[string]*entry{}}
	for _, p := range opts.Pipelines {
		if p.Pipeline == nil {
			return nil, errors.New("admin: a pipeline is nil")
		}
		name := p.Pipeline.Name()
		if s.byName[name] != nil {
			return nil, fmt.Errorf("admin: pipeline %q is listed twice", name)
		}
		cfg, err := configMap(p.Config)
		if err != nil {
			return nil, fmt.Errorf("admin: rendering the configuration of %s: %w", name, err)
		}
		e := &entry{Pipeline: p, config: cfg}
		s.order = append(s.order, e)
		s.byName[name] = e
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is done, then shuts down gracefully (open
// requests get 3 seconds). It samples throughput meanwhile. It returns nil
// after a shutdown caused by ctx, and ErrTokenRequired at once for a
// non-loopback ln without a token.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := CheckExposure(ln.Addr(), s.opts.Token); err != nil {
		return err
	}
	addr := ln.Addr().String()
	s.listenAddr.Store(&addr)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving the admin API: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		// Open requests get a moment to finish; then connections are cut.
		// (Shutdown also waits for connections that never sent a request,
		// which a browser's preconnect leaves behind.) A control request
		// cut short still completes in the engine.
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.log.Debug("admin API: closing connections still open", "err", err)
			_ = srv.Close()
		}
		return nil
	})
	g.Go(func() error {
		t := time.NewTicker(s.opts.SampleEvery)
		defer t.Stop()
		s.Sample(time.Now())
		for {
			select {
			case <-gctx.Done():
				return nil
			case now := <-t.C:
				s.Sample(now)
			}
		}
	})
	return g.Wait()
}

// Sample records every pipeline's counters and lag at now, for rates and
// charts. Serve calls it every SampleEvery; it also keeps the lag and
// in-flight gauges of /metrics fresh.
func (s *Server) Sample(now time.Time) {
	for _, e := range s.order {
		e.history.add(now, e.Pipeline.Pipeline.Status())
	}
}

func isLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pipelines", s.listPipelines)
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("GET /v1/pipelines/{name}", s.getPipeline)
	mux.HandleFunc("POST /v1/pipelines/{name}/consumers", s.mutating(s.addConsumer))
	mux.HandleFunc("DELETE /v1/pipelines/{name}/consumers/{id}", s.mutating(s.removeConsumer))
	mux.HandleFunc("PATCH /v1/pipelines/{name}/properties", s.mutating(s.setProperties))
	mux.HandleFunc("POST /v1/pipelines/{name}/pause", s.mutating(s.pause))
	mux.HandleFunc("POST /v1/pipelines/{name}/resume", s.mutating(s.resume))
	mux.HandleFunc("POST /v1/pipelines/{name}/merge", s.mutating(s.merge))
	mux.HandleFunc("GET /v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /", dashboard())
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: control this server from its own dashboard, curl or sluice")
	}))
	return countRequests(s.checkHost(cop.Handler(mux)))
}

// mutating requires the bearer token, when one is set.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs the admin token: Authorization: Bearer <token>")
			return
		}
		h(w, r)
	}
}

// lookup finds the pipeline named in the path, or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *entry {
	name := r.PathValue("name")
	e := s.byName[name]
	if e == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pipeline named %q", name))
	}
	return e
}

// statusRecorder remembers the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// countRequests counts requests by route pattern (bounded: the patterns
// above) and status code.
func countRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern // set by the mux on this request
		if route == "" {
			route = "unmatched"
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		metrics.AdminRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	})
}
