package e2e

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/connector"
	_ "modernc.org/sqlite"
)

// sqlDB is the test's own handle on a database, for setup and checks.
type sqlDB struct {
	kind string
	dsn  string // postgres, mysql
	path string // sqlite
	pg   *pgx.Conn
	std  *dbsql.DB
}

func sqlPostgresDSN() string {
	if v := os.Getenv("SLUICE_TEST_POSTGRES_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func sqlMariaDSN() string {
	if v := os.Getenv("SLUICE_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

func openSQL(t *testing.T, kind string) *sqlDB {
	t.Helper()
	d := &sqlDB{kind: kind}
	var err error
	switch kind {
	case "postgres":
		d.dsn = sqlPostgresDSN()
		d.pg, err = pgx.Connect(context.Background(), d.dsn)
		if err == nil {
			t.Cleanup(func() { d.pg.Close(context.Background()) })
		}
	case "mysql":
		d.dsn = sqlMariaDSN()
		d.std, err = dbsql.Open("mysql", d.dsn+"?multiStatements=true&parseTime=true")
		if err == nil {
			err = d.std.Ping()
		}
	case "sqlite":
		d.path = filepath.Join(t.TempDir(), "e2e.db")
		d.std, err = dbsql.Open("sqlite", "file:"+d.path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	}
	if err != nil {
		t.Fatalf("connecting to the test %s: %v (is it running? see DESIGN.md, test stack)", kind, err)
	}
	if d.std != nil {
		t.Cleanup(func() { d.std.Close() })
	}
	return d
}

func (d *sqlDB) exec(t *testing.T, sql string) {
	t.Helper()
	var err error
	if d.pg != nil {
		_, err = d.pg.Exec(context.Background(), sql)
	} else {
		_, err = d.std.Exec(sql)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (d *sqlDB) count(t *testing.T, sql string) int64 {
	t.Helper()
	n, err := d.tryCount(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// tryCount is count for a table that may not exist yet.
func (d *sqlDB) tryCount(sql string) (int64, error) {
	var n *int64
	var err error
	if d.pg != nil {
		err = d.pg.QueryRow(context.Background(), sql).Scan(&n)
	} else {
		err = d.std.QueryRow(sql).Scan(&n)
	}
	if err != nil || n == nil {
		return 0, err
	}
	return *n, nil
}

// intervals reads (start, end) pairs.
func (d *sqlDB) intervals(t *testing.T, sql string) [][2]time.Time {
	t.Helper()
	var out [][2]time.Time
	if d.pg != nil {
		rows, err := d.pg.Query(context.Background(), sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b time.Time
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, [2]time.Time{a, b})
		}
		return out
	}
	rows, err := d.std.Query(sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b time.Time
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]time.Time{a, b})
	}
	return out
}

func sqlName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, rand.IntN(1e6))
}

// cleanupSQL drops tables (and other objects: "PROCEDURE name") and the
// pipeline's bookkeeping rows when the test ends.
func (d *sqlDB) cleanupSQL(t *testing.T, pipeline string, objects ...string) {
	t.Cleanup(func() {
		for _, o := range objects {
			kind, name, found := strings.Cut(o, " ")
			if !found {
				kind, name = "TABLE", o
			}
			stmt := fmt.Sprintf("DROP %s IF EXISTS %s", kind, name)
			if d.kind == "postgres" {
				stmt += " CASCADE"
			}
			d.exec(t, stmt)
		}
		for _, bk := range []string{"sluice_offsets", "sluice_merge_state", "sluice_batches"} {
			var q string
			switch d.kind {
			case "sqlite":
				q = fmt.Sprintf("SELECT count(*) FROM sqlite_master WHERE name = '%s'", bk)
			case "mysql":
				q = fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '%s'", bk)
			default:
				q = fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '%s'", bk)
			}
			if d.count(t, q) > 0 {
				d.exec(t, fmt.Sprintf("DELETE FROM %s WHERE pipeline = '%s'", bk, pipeline))
			}
		}
	})
}

func sqlMerges(b *assembly.Built) []connector.MergeInfo {
	m, ok := b.Sink.(connector.Merger)
	if !ok {
		return nil
	}
	return m.Merges()
}

// sqlProxy forwards to a database and can be taken down and brought back
// on the same address, to play a database outage.
type sqlProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startSQLProxy(t *testing.T, target string) *sqlProxy {
	t.Helper()
	p := &sqlProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *sqlProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// down closes the listener and cuts every connection.
func (p *sqlProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	p.wg.Wait()
}

// up listens again on the same address.
func (p *sqlProxy) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("proxy listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
