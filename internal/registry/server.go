// Package registry is a small Confluent-compatible Schema Registry: the one
// `sluice dev` serves on 127.0.0.1:8081, and a real server for tests.
//
// It speaks the subset of the REST API that serializers, franz-go's sr
// client and operators use: subjects and versions, schemas by id, lookup,
// soft and permanent deletes, compatibility levels (BACKWARD by default,
// checked with hamba/avro) and compatibility checks. Schema types AVRO (the
// default) and JSON are accepted; JSON schemas are stored, not checked.
// Errors have Confluent's shape ({"error_code":40401,"message":"..."}) and
// codes, so clients classify them as they would against the real thing.
//
// State is kept in memory and, when a directory is given, in one JSON file
// there, replaced atomically on every change and reloaded on start.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configures a Server.
type Options struct {
	// Dir is the directory the registry persists to; it is created if
	// missing. Empty keeps everything in memory only.
	Dir string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Server is a Confluent-compatible schema registry. It is an http.Handler;
// Start or Serve run it on a listener. It is safe for concurrent use.
type Server struct {
	dir string
	log *slog.Logger
	mux *http.ServeMux

	mu sync.Mutex
	st *state // replaced, never modified in place, by update
}

// New returns a Server, loading its state from opts.Dir when set.
func New(opts Options) (*Server, error) {
	s := &Server{dir: opts.Dir, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dir != "" {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating schema registry directory: %w", err)
		}
		st, err := load(s.dir)
		if err != nil {
			return nil, err
		}
		s.st = st
	} else {
		s.st = newState()
	}
	s.mux = s.routes()
	return s, nil
}

// ServeHTTP serves the registry's REST API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Running is a server started by Start.
type Running struct {
	addr net.Addr
	done chan struct{}
	err  error
}

// Addr is the address the server listens on, e.g. "127.0.0.1:8081".
func (r *Running) Addr() string { return r.addr.String() }

// URL is the base URL clients use, e.g. "http://127.0.0.1:8081".
func (r *Running) URL() string { return "http://" + r.addr.String() }

// Wait blocks until the server has stopped (its context is done and
// in-flight requests are finished) and returns why it stopped: nil after a
// clean shutdown.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// Start listens on addr (e.g. "127.0.0.1:8081", or port 0 for any free
// port) and serves until ctx is done. It returns once the listener is
// bound, so a port already in use is reported here.
func (s *Server) Start(ctx context.Context, addr string) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the schema registry: %w", err)
	}
	r := &Running{addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = s.Serve(ctx, ln)
	}()
	return r, nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully (waiting
// up to 5 s for in-flight requests). It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("schema registry listening", "addr", ln.Addr().String(), "dir", s.dir)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving the schema registry: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutting down the schema registry: %w", err)
		}
		return nil
	})
	err := g.Wait()
	s.log.Info("schema registry stopped")
	return err
}

// read runs fn on the current state under the lock.
func (s *Server) read(fn func(st *state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(s.st)
}

// update runs fn on a copy of the state; when fn reports a change, the copy
// is persisted and only then becomes the state. A failed save leaves the
// previous state in place, so what clients were told matches what is on
// disk.
func (s *Server) update(fn func(st *state) (changed bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	changed, err := fn(next)
	if err != nil || !changed {
		return err
	}
	if s.dir != "" {
		if err := save(s.dir, next); err != nil {
			return &apiError{status: http.StatusInternalServerError, code: codeStoreError, msg: err.Error()}
		}
	}
	s.st = next
	return nil
}
