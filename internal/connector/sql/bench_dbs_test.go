package sql_test

import (
	"bufio"
	"context"
	dbsql "database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/connector"
)

type benchDB struct {
	kind, server, tsType string
	sinkCfg              func(table string) string
	d                    *testDB
}

func benchTarget(b *testing.B, kind string) *benchDB {
	d := openTestDB(b, kind)
	switch kind {
	case "postgres":
		return &benchDB{kind: kind, server: "postgres", tsType: "timestamptz", d: d,
			sinkCfg: func(t string) string { return fmt.Sprintf("{dsn: %q, staging_table: %s", d.cfg.DSN, t) }}
	case "mysql":
		return &benchDB{kind: kind, server: "mariadbd", tsType: "datetime(6)", d: d,
			sinkCfg: func(t string) string { return fmt.Sprintf("{dsn: %q, staging_table: %s", d.cfg.DSN, t) }}
	default:
		path := d.cfg.Path
		return &benchDB{kind: kind, server: "", tsType: "TIMESTAMP", d: d,
			sinkCfg: func(t string) string { return fmt.Sprintf("{path: %q, staging_table: %s", path, t) }}
	}
}

// staging creates the staging table (and a final table) and drops them
// when the benchmark ends.
func (x *benchDB) staging(b *testing.B) (stg, fin string) {
	stg, fin = uniqueName("bstg"), uniqueName("bfin")
	x.d.exec(b, fmt.Sprintf("CREATE TABLE %s ("+benchColumns+")", stg, x.tsType))
	x.d.exec(b, fmt.Sprintf("CREATE TABLE %s ("+benchColumns+")", fin, x.tsType))
	b.Cleanup(func() {
		x.d.exec(b, "DROP TABLE IF EXISTS "+stg)
		x.d.exec(b, "DROP TABLE IF EXISTS "+fin)
	})
	return stg, fin
}

func mergedRecords(built *benchPipeline) int64 {
	var n int64
	for _, m := range built.sink.(connector.Merger).Merges() {
		if m.Error == "" {
			n += m.Records
		}
	}
	return n
}

func benchStaging(b *testing.B, kind string, consumers int) {
	x := benchTarget(b, kind)
	stg, _ := x.staging(b)
	runKafkaToSQL(b, kind, x.server, x.sinkCfg(stg)+"}", consumers, benchRecords(), func(built *benchPipeline) int64 {
		return built.p.Status().RecordsOut
	})
}

func benchMerge(b *testing.B, kind string, every int, sleep string, n int, opts string) {
	x := benchTarget(b, kind)
	stg, fin := x.staging(b)
	stmts := fmt.Sprintf(`["INSERT INTO %[2]s SELECT * FROM %[1]s WHERE _sluice_batch <= {{.HighWaterMark}}", "DELETE FROM %[1]s WHERE _sluice_batch <= {{.HighWaterMark}}"%[3]s]`, stg, fin, sleep)
	sink := x.sinkCfg(stg) + fmt.Sprintf(", merge: {statements: %s, every_records: %d, idle: 1s%s}}", stmts, every, opts)
	runKafkaToSQL(b, kind, x.server, sink, 1, n, mergedRecords)
}

func BenchmarkKafkaToPostgresStaging(b *testing.B)           { benchStaging(b, "postgres", 1) }
func BenchmarkKafkaToPostgresStaging3Consumers(b *testing.B) { benchStaging(b, "postgres", 3) }
func BenchmarkKafkaToPostgresMergeEvery100k(b *testing.B) {
	benchMerge(b, "postgres", 100_000, "", benchRecords(), "")
}

// A 2 s merge procedure with a 100-record threshold (the case):
// how many records per second still get through, end to end.
func BenchmarkKafkaToPostgresSlowMergeEvery100(b *testing.B) {
	benchMerge(b, "postgres", 100, `, "SELECT pg_sleep(2)"`, min(100_000, benchRecords()), "")
}

// The same with exact: true, where every merge takes exactly 100 rows:
// bounded by 100 rows per 2 s merge whatever the mode.
func BenchmarkKafkaToPostgresSlowMergeEvery100Exact(b *testing.B) {
	benchMerge(b, "postgres", 100, `, "SELECT pg_sleep(2)"`, 1_000, ", exact: true, mode: continuous")
}
func BenchmarkKafkaToMySQLStaging(b *testing.B)           { benchStaging(b, "mysql", 1) }
func BenchmarkKafkaToMySQLStaging3Consumers(b *testing.B) { benchStaging(b, "mysql", 3) }
func BenchmarkKafkaToMySQLMergeEvery100k(b *testing.B) {
	benchMerge(b, "mysql", 100_000, "", benchRecords(), "")
}
func BenchmarkKafkaToSQLiteStaging(b *testing.B) { benchStaging(b, "sqlite", 1) }
func BenchmarkKafkaToSQLiteMergeEvery100k(b *testing.B) {
	benchMerge(b, "sqlite", 100_000, "", benchRecords(), "")
}

// benchFile writes the rows as tab-separated text (COPY's text format).
func benchFile(b *testing.B, n int) string {
	path := filepath.Join(b.TempDir(), "rows.tsv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "%d\titem %d\t%d.5\tcategory-%02d\tSKU-%08d\tlorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\t%d\t2024-05-01 12:34:56\n",
			i, i, i%1000, i%20, i, map[bool]int{true: 1, false: 0}[i%3 == 0])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

const benchDataCols = "id, name, price, category, sku, description, in_stock, updated_at"

func baseline(b *testing.B, what, server string, n int, run func()) {
	b.ResetTimer()
	before, start := cpuNow(server), time.Now()
	run()
	took, after := time.Since(start), cpuNow(server)
	b.StopTimer()
	report(b, what, n, took, before, after)
}

func BenchmarkBaselinePsqlCopy(b *testing.B) {
	x := benchTarget(b, "postgres")
	stg, _ := x.staging(b)
	file := benchFile(b, benchRecords())
	baseline(b, b.Name(), x.server, benchRecords(), func() {
		cmd := exec.Command("psql", x.d.cfg.DSN, "-c", fmt.Sprintf(`\copy %s (%s) FROM '%s'`, stg, benchDataCols, file))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
	})
}

func BenchmarkBaselineMySQLLoadData(b *testing.B) {
	x := benchTarget(b, "mysql")
	stg, _ := x.staging(b)
	file := benchFile(b, benchRecords())
	baseline(b, b.Name(), x.server, benchRecords(), func() {
		cmd := exec.Command("mysql", "--local-infile=1", "-h127.0.0.1", "-uroot", "test", "-e",
			fmt.Sprintf(`LOAD DATA LOCAL INFILE '%s' INTO TABLE %s (%s)`, file, stg, benchDataCols))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("mysql: %v\n%s", err, out)
		}
	})
}

func BenchmarkBaselineSQLiteImport(b *testing.B) {
	path := filepath.Join(b.TempDir(), "import.db")
	file := benchFile(b, benchRecords())
	if out, err := exec.Command("sqlite3", path, "CREATE TABLE t (id INTEGER, name TEXT, price NUMERIC, category TEXT, sku TEXT, description TEXT, in_stock BOOLEAN, updated_at TIMESTAMP)").CombinedOutput(); err != nil {
		b.Fatalf("sqlite3: %v\n%s", err, out)
	}
	baseline(b, b.Name(), "", benchRecords(), func() {
		if out, err := exec.Command("sqlite3", path, ".mode tabs", ".import "+file+" t").CombinedOutput(); err != nil {
			b.Fatalf("sqlite3: %v\n%s", err, out)
		}
	})
}

// One row per autocommit INSERT: what a naive consumer does.
func BenchmarkBaselineOneRowInsert(b *testing.B) {
	for _, kind := range []string{"postgres", "mysql", "sqlite"} {
		b.Run(kind, func(b *testing.B) {
			x := benchTarget(b, kind)
			n := 20_000
			if kind == "sqlite" {
				n = 2_000 // an fsync per row
			}
			stg, _ := x.staging(b)
			ins := fmt.Sprintf("INSERT INTO %s (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", stg, benchDataCols)
			ts := time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC)
			var exec1 func(i int) error
			if kind == "postgres" {
				c, err := pgx.Connect(context.Background(), x.d.cfg.DSN)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close(context.Background())
				pg := "INSERT INTO " + stg + " (" + benchDataCols + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
				exec1 = func(i int) error {
					_, err := c.Exec(context.Background(), pg, i, fmt.Sprint("item ", i), fmt.Sprintf("%d.5", i%1000), "category", "SKU", "lorem ipsum", i%3 == 0, ts)
					return err
				}
			} else {
				db := x.d.std
				if kind == "sqlite" {
					var err error
					db, err = dbsql.Open("sqlite", "file:"+x.d.cfg.Path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
				}
				exec1 = func(i int) error {
					_, err := db.Exec(ins, i, fmt.Sprint("item ", i), fmt.Sprintf("%d.5", i%1000), "category", "SKU", "lorem ipsum", i%3 == 0, ts)
					return err
				}
			}
			baseline(b, b.Name(), x.server, n, func() {
				for i := 0; i < n; i++ {
					if err := exec1(i); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
