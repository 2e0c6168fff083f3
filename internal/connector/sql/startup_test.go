package sql_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

var serverKinds = []string{"postgres", "mysql"}

func TestSQLSinkWaitsForADatabaseThatIsDownAtStartup(t *testing.T) {
	for _, kind := range serverKinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("late"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer, name varchar(64), price numeric(8,2))", tbl))
			addr := freeAddr(t)
			cfg := d.cfg
			cfg.Table = tbl
			var target, secret string
			cfg.DSN, target, secret = serverDSN(t, kind, addr, "")
			logs := &recordedLogs{}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			done := startSink(ctx, kind, cfg, pipe, logs)

			// Nothing listens at addr yet: New must be retrying, not failing.
			logs.waitForWarns(t, 3)
			for _, w := range logs.list() {
				if !strings.Contains(w, "host="+addr) {
					t.Errorf("retry warning does not name the host %s: %s", addr, w)
				}
				if secret != "" && strings.Contains(w, secret) {
					t.Errorf("retry warning shows the password: %s", w)
				}
			}
			t.Logf("while the database is down: %s", logs.list()[0])
			forward(t, addr, target) // the database comes up

			res := waitForNew(t, done, 60*time.Second)
			if res.err != nil {
				t.Fatalf("New after the database came up: %v", res.err)
			}
			t.Cleanup(func() { res.sink.Close(context.Background()) })
			if err := res.sink.Write(context.Background(), items(t, "films", 0, 0, 3)); err != nil {
				t.Fatalf("write after the database came up: %v", err)
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 3 {
				t.Fatalf("rows = %d, want 3", n)
			}
		})
	}
}

func TestSQLSinkUnknownDatabaseFailsAtOnce(t *testing.T) {
	for _, kind := range serverKinds {
		t.Run(kind, func(t *testing.T) {
			dsn, _, _ := serverDSN(t, kind, "", "does_not_exist_xyz")
			logs := &recordedLogs{}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := newError(t, waitForNew(t, startSink(ctx, kind, filmsConfig(dsn), uniqueName("p"), logs), 60*time.Second))
			if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "does_not_exist_xyz") {
				t.Fatalf("err = %v, want a permanent error naming the database", err)
			}
			if ctx.Err() != nil || len(logs.list()) > 0 {
				t.Fatalf("New retried an unknown database (warnings: %q)", logs.list())
			}
		})
	}
}

func TestSQLSinkCancelWhileWaitingForTheDatabaseReturnsPromptly(t *testing.T) {
	for _, kind := range serverKinds {
		t.Run(kind, func(t *testing.T) {
			dsn, _, _ := serverDSN(t, kind, freeAddr(t), "")
			logs := &recordedLogs{}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			done := startSink(ctx, kind, filmsConfig(dsn), uniqueName("p"), logs)
			logs.waitForWarns(t, 1)
			cancel() // Ctrl-C
			err := newError(t, waitForNew(t, done, 5*time.Second))
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "could not be reached") {
				t.Fatalf("err = %v, want one saying the database could not be reached before the cancel", err)
			}
		})
	}
}

type newResult struct {
	sink connector.Sink
	err  error
}

// startSink runs sqlsink.New in the background, logging Warns to logs.
func startSink(ctx context.Context, kind string, cfg config.SQLSink, pipeline string, logs *recordedLogs) <-chan newResult {
	o := sqlsink.Options{Kind: kind, Config: cfg, Pipeline: pipeline, Logger: slog.New(recordingHandler{logs: logs})}
	done := make(chan newResult, 1)
	go func() {
		s, err := sqlsink.New(ctx, o)
		done <- newResult{s, err}
	}()
	return done
}

func waitForNew(t *testing.T, done <-chan newResult, limit time.Duration) newResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("New did not return within %s", limit)
		return newResult{}
	}
}

// newError is the error of a New expected to fail.
func newError(t *testing.T, res newResult) error {
	t.Helper()
	if res.err == nil {
		res.sink.Close(context.Background())
		t.Fatal("New succeeded, want an error")
	}
	return res.err
}

// filmsConfig is a sink writing table films through dsn; the tests using
// it never get as far as the table.
func filmsConfig(dsn string) config.SQLSink {
	return config.SQLSink{DSN: dsn, Table: "films", MaxConnections: 8}
}

// freeAddr is a local address nothing listens on (until forward).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serverDSN is the test database's DSN pointed at addr (the real server
// when ""), for database db (the test database when ""). target is the
// real server's address; secret the password in the DSN, if any.
func serverDSN(t *testing.T, kind, addr, db string) (dsn, target, secret string) {
	t.Helper()
	if kind == "mysql" {
		c, err := mysql.ParseDSN(mysqlDSN())
		if err != nil {
			t.Fatal(err)
		}
		target = c.Addr
		c.Addr, c.DBName = cmp.Or(addr, c.Addr), cmp.Or(db, c.DBName)
		return c.FormatDSN(), target, c.Passwd
	}
	c, err := pgx.ParseConfig(pgDSN())
	if err != nil {
		t.Fatal(err)
	}
	target = net.JoinHostPort(c.Host, fmt.Sprint(c.Port))
	// The test server trusts local connections: the password only checks
	// that logs do not show it.
	secret = cmp.Or(c.Password, "s3cret-in-the-dsn")
	u := url.URL{Scheme: "postgres", User: url.UserPassword(c.User, secret), Host: cmp.Or(addr, target),
		Path: "/" + cmp.Or(db, c.Database), RawQuery: "sslmode=disable"}
	return u.String(), target, secret
}

// forward listens at addr and relays each connection to target until the
// test ends: a database that comes up late.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening at %s: %v", addr, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			track(in)
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			track(out)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			wg.Go(func() { relay(out, in) })
			wg.Go(func() { relay(in, out) })
		}
	})
}

// recordedLogs keeps the Warn and Error lines a sink logged.
type recordedLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *recordedLogs) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *recordedLogs) waitForWarns(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(l.list()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d warnings after 30s, want %d: %q", len(l.list()), n, l.list())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type recordingHandler struct {
	logs  *recordedLogs
	attrs []slog.Attr
}

func (h recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.logs.mu.Lock()
	h.logs.lines = append(h.logs.lines, b.String())
	h.logs.mu.Unlock()
	return nil
}

func (h recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recordingHandler{logs: h.logs, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h recordingHandler) WithGroup(string) slog.Handler { return h }
