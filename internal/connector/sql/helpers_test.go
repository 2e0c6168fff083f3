package sql_test

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
	_ "modernc.org/sqlite"
)

// The databases of the test stack (see DESIGN.md); override with
// SLUICE_TEST_POSTGRES_DSN and SLUICE_TEST_MYSQL_DSN.
func pgDSN() string {
	if v := os.Getenv("SLUICE_TEST_POSTGRES_DSN"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func mysqlDSN() string {
	if v := os.Getenv("SLUICE_TEST_MYSQL_DSN"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

// testDB runs the test's own SQL (setup and checks) on one database.
type testDB struct {
	kind string
	cfg  config.SQLSink // dsn or path set
	std  *dbsql.DB      // mysql, sqlite
	pg   *pgx.Conn
}

func openTestDB(t testing.TB, kind string) *testDB {
	t.Helper()
	ctx := context.Background()
	d := &testDB{kind: kind}
	var err error
	switch kind {
	case "postgres":
		d.cfg.DSN = pgDSN()
		d.pg, err = pgx.Connect(ctx, d.cfg.DSN)
		if err == nil {
			t.Cleanup(func() { d.pg.Close(context.Background()) })
		}
	case "mysql":
		d.cfg.DSN = mysqlDSN()
		d.std, err = dbsql.Open("mysql", d.cfg.DSN+"?multiStatements=true")
		if err == nil {
			err = d.std.PingContext(ctx)
		}
	case "sqlite":
		d.cfg.Path = filepath.Join(t.TempDir(), "test.db")
		d.std, err = dbsql.Open("sqlite", "file:"+d.cfg.Path+"?_pragma=busy_timeout(10000)")
		if err == nil {
			d.std.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		t.Fatalf("connecting to the test %s: %v (is it running? see DESIGN.md, test stack)", kind, err)
	}
	if d.std != nil {
		t.Cleanup(func() { d.std.Close() })
	}
	d.cfg.MaxConnections = 8
	return d
}

func (d *testDB) exec(t testing.TB, sql string) {
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

func (d *testDB) int(t testing.TB, sql string) int64 {
	t.Helper()
	var n *int64
	var err error
	if d.pg != nil {
		err = d.pg.QueryRow(context.Background(), sql).Scan(&n)
	} else {
		err = d.std.QueryRow(sql).Scan(&n)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if n == nil {
		return 0
	}
	return *n
}

func (d *testDB) strings(t testing.TB, sql string) []string {
	t.Helper()
	var out []string
	if d.pg != nil {
		rows, err := d.pg.Query(context.Background(), sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, joinValues(vals))
		}
		return out
	}
	rows, err := d.std.Query(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, joinValues(vals))
	}
	return out
}

func joinValues(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " ")
}

// uniqueName is a table or pipeline name no parallel test uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, rand.IntN(1e6))
}

// dropAfter drops the test's tables and bookkeeping rows at the end.
func (d *testDB) dropAfter(t *testing.T, pipeline string, tables ...string) {
	t.Cleanup(func() {
		for _, tb := range tables {
			d.exec(t, "DROP TABLE IF EXISTS "+tb)
		}
		for _, bk := range []string{"sluice_offsets", "sluice_slot_offsets", "sluice_merge_state", "sluice_batches"} {
			if d.int(t, d.tableExists(bk)) > 0 {
				d.exec(t, fmt.Sprintf("DELETE FROM %s WHERE pipeline = '%s'", bk, pipeline))
			}
		}
	})
}

func (d *testDB) tableExists(name string) string {
	switch d.kind {
	case "sqlite":
		return fmt.Sprintf("SELECT count(*) FROM sqlite_master WHERE name = '%s'", name)
	case "mysql":
		return fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '%s'", name)
	default:
		return fmt.Sprintf("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '%s'", name)
	}
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newSink(t *testing.T, d *testDB, pipeline string, cfg config.SQLSink, exactlyOnce bool) connector.Sink {
	t.Helper()
	s, err := sqlsink.New(context.Background(), sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipeline, ExactlyOnce: exactlyOnce, Logger: testLogger()})
	if err != nil {
		t.Fatalf("new %s sink: %v", d.kind, err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// records decodes JSON values into records of topic/partition from offset.
func records(t *testing.T, topic string, partition int32, offset int64, values ...string) []*connector.Record {
	t.Helper()
	out := make([]*connector.Record, len(values))
	for i, v := range values {
		r := &connector.Record{Topic: topic, Partition: partition, Offset: offset + int64(i),
			Timestamp: time.UnixMilli(1700000000000 + int64(i)), Key: []byte(fmt.Sprintf("k%d", offset+int64(i))), Value: []byte(v)}
		if err := (codec.JSON{}).Decode(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

// items is n records {"id":i,"name":"item i","price":i.5} from offset.
func items(t *testing.T, topic string, partition int32, offset int64, n int) []*connector.Record {
	vals := make([]string, n)
	for i := range vals {
		id := offset + int64(i)
		vals[i] = fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, id, id, id%1000)
	}
	return records(t, topic, partition, offset, vals...)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func newSinkErr(d *testDB, pipeline string, cfg config.SQLSink) (connector.Sink, error) {
	s, err := sqlsink.New(context.Background(), sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipeline, Logger: testLogger()})
	if err == nil {
		s.Close(context.Background())
	}
	return s, err
}
