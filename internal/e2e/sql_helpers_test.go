package e2e

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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
		for _, bk := range []string{"sluice_offsets", "sluice_slot_offsets", "sluice_merge_state", "sluice_batches"} {
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
