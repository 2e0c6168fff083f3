package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/config"
)

// privatePostgres is a PostgreSQL server of the test's own, on a free
// port: a test may restart it, which it must never do to the shared one.
type privatePostgres struct {
	bin, data, log string
	dsn            string
}

// startPrivatePostgres initdbs a cluster into a temporary directory and
// starts it; the test's cleanup stops it and removes the directory.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries (scripts/test installs them)")
	}
	sort.Strings(bins)
	p := &privatePostgres{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.data, p.log = filepath.Join(dir, "data"), filepath.Join(dir, "log")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.run(t, "initdb", "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	p.run(t, "pg_ctl", "-D", p.data, "-o", opts, "-l", p.log, "-w", "start")
	t.Cleanup(func() { p.run(t, "pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop") })
	p.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return p
}

func (p *privatePostgres) run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.log)
		t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

// crashRestart kills the server at once (no shutdown checkpoint, as a
// crash would) and starts it again: it recovers from its WAL.
func (p *privatePostgres) crashRestart(t *testing.T) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.data, "-m", "immediate", "-l", p.log, "-w", "restart")
}

// TestSQLPostgresRestartedMidMergeLosesNothing: the database itself is
// killed and restarted, once while a merge runs and once while rows are
// being copied into staging. The pipeline retries until it is back, and
// with exactly_once the final table equals the input: nothing lost, no row
// merged twice.
func TestSQLPostgresRestartedMidMergeLosesNothing(t *testing.T) {
	const n = 6000
	pg := startPrivatePostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	d := &sqlDB{kind: "postgres", dsn: pg.dsn, pg: conn}
	reconnect := func() {
		var c *pgx.Conn
		eventually(t, 60*time.Second, "the restarted database to take connections", func() bool {
			c, err = pgx.Connect(ctx, pg.dsn)
			return err == nil
		})
		d.pg.Close(ctx)
		d.pg = c
	}
	t.Cleanup(func() { d.pg.Close(ctx) })
	pipe := sqlName("restart")
	m := setupPgMerge(t, d, pipe, 1) // a merge lasts 1 s: the restart lands in it
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "restart", 3)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [restart], group: %s, consumers: 2}
format: {value: json}
delivery: %s
batch: {max_records: 500}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1500, idle: 300ms}
`, pipe, brokers[0], pipe, config.ExactlyOnce, pg.dsn, m.stg, m.proc))

	merging := func() bool {
		n, err := d.tryCount(fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL %s(%%'", m.proc))
		return err == nil && n > 0
	}
	produceN(t, brokers, "restart", 0, n/3)
	eventually(t, 60*time.Second, "a merge to be running", merging)
	pg.crashRestart(t) // mid-merge
	reconnect()
	produceN(t, brokers, "restart", n/3, n/3)
	eventually(t, 60*time.Second, "rows arriving in staging again", func() bool {
		c, err := d.tryCount("SELECT count(*) FROM " + m.stg)
		return err == nil && c > 0
	})
	pg.crashRestart(t) // while rows are copied in
	reconnect()
	produceN(t, brokers, "restart", 2*n/3, n-2*n/3)
	eventually(t, 90*time.Second, "every record merged into the final table", func() bool {
		fin, err1 := d.tryCount("SELECT count(DISTINCT id) FROM " + m.fin)
		stg, err2 := d.tryCount("SELECT count(*) FROM " + m.stg)
		return err1 == nil && err2 == nil && fin >= n && stg == 0
	})
	retries := b.Pipeline.Status().Retries
	if err := stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	t.Logf("database crashed and restarted twice (once mid-merge): %d records in, %d out exactly once, %d retries", n, n, retries)
}
