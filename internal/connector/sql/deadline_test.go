package sql_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/faultproxy"
)

// Commits as they go on the wire: pgx's simple query, go-sql-driver's
// COM_QUERY.
var (
	pgCommitQuery    = []byte("Q\x00\x00\x00\x0bcommit\x00")
	mysqlCommitQuery = []byte("\x07\x00\x00\x00\x03COMMIT")
)

// proxied returns d's config with the sink's connections going through a
// new fault proxy.
func proxied(t *testing.T, d *testDB) (config.SQLSink, *faultproxy.Proxy) {
	t.Helper()
	cfg := d.cfg
	var target string
	var redial func(addr string) string
	switch d.kind {
	case "postgres":
		u, err := url.Parse(cfg.DSN)
		if err != nil || u.Host == "" {
			t.Skipf("the postgres DSN is not a URL with a host: %v", err)
		}
		target = u.Host
		redial = func(addr string) string { u.Host = addr; return u.String() }
	case "mysql":
		mc, err := mysql.ParseDSN(cfg.DSN)
		if err != nil || mc.Net != "tcp" {
			t.Skipf("the mysql DSN is not over TCP: %v", err)
		}
		target = mc.Addr
		redial = func(addr string) string { mc.Addr = addr; return mc.FormatDSN() }
	}
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	cfg.DSN = redial(p.Addr())
	return cfg, p
}

// writeRetrying writes batch as the engine would, again while the error is
// transient; it returns the failed attempts.
func writeRetrying(t *testing.T, s connector.Sink, batch []*connector.Record) int {
	t.Helper()
	for failed := 0; failed < 10; failed++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.Write(ctx, batch)
		cancel()
		if err == nil {
			return failed
		}
		if connector.IsPermanent(err) {
			t.Fatalf("write failed for good: %v", err)
		}
	}
	t.Fatal("the write still fails after 10 attempts")
	return 0
}

// TestSQLHalfOpenConnectionTimesOutAndTheRetryWritesOnce: the sink's
// connections go half-open (the server forgot them, no RST ever comes),
// once before a write and once between a COMMIT the server applied and
// its answer. Each time the write gives up after statement_timeout
// instead of waiting forever, its retry goes to a fresh connection, and
// exactly-once keeps every row once: the retry after the lost answer
// finds the rows' offsets stored and writes nothing again.
func TestSQLHalfOpenConnectionTimesOutAndTheRetryWritesOnce(t *testing.T) {
	const timeout = time.Second
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("halfopen"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer NOT NULL, name varchar(64), price numeric(8,2))", tbl))
			cfg, proxy := proxied(t, d)
			cfg.Table, cfg.StatementTimeout = tbl, timeout
			s := newSink(t, d, pipe, cfg, true)
			if err := s.Write(context.Background(), items(t, "films", 0, 0, 100)); err != nil {
				t.Fatal(err)
			}

			// Stranded between writes: the pooled connections never answer.
			proxy.Strand()
			stuck := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := s.Write(ctx, items(t, "films", 0, 100, 100))
			cancel()
			took := time.Since(stuck)
			if err == nil || connector.IsPermanent(err) || took > 10*timeout {
				t.Fatalf("write on a stranded connection: %v after %v; want a transient error after about %v", err, took, timeout)
			}
			if kind == "postgres" && !contains(err.Error(), "statement_timeout") {
				t.Errorf("the error does not name statement_timeout: %v", err)
			}
			failed := writeRetrying(t, s, items(t, "films", 0, 100, 100))

			// Stranded after the COMMIT reached the server: its answer
			// never comes.
			commit := pgCommitQuery
			if kind == "mysql" {
				commit = mysqlCommitQuery
			}
			proxy.DropAnswersAfter(faultproxy.Contains(commit), 0, 0)
			stuck = time.Now()
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
			err = s.Write(ctx, items(t, "films", 0, 200, 100))
			cancel()
			took = time.Since(stuck)
			if err == nil || connector.IsPermanent(err) || took > 10*timeout {
				t.Fatalf("write whose commit answer never comes: %v after %v; want a transient error after about %v", err, took, timeout)
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 300 {
				t.Fatalf("%d rows after the unanswered commit, want 300: the commit did not reach the server", n)
			}
			failed += writeRetrying(t, s, items(t, "films", 0, 200, 100))

			if n, distinct := d.int(t, "SELECT count(*) FROM "+tbl), d.int(t, "SELECT count(DISTINCT id) FROM "+tbl); n != 300 || distinct != 300 {
				t.Fatalf("%d rows, %d distinct ids; want 300 once each", n, distinct)
			}
			t.Logf("%s: 2 half-open faults, each ended after %v; %d more failed attempts on stranded pooled connections; 300 rows once", kind, timeout, failed)
		})
	}
}
