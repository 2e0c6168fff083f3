package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// sqliteMerge is the films-like merge of `sluice demo`: SQLite has no
// procedures, so the merge is a list of statements.
func sqliteMerge(stg, fin, mlog string) string {
	return fmt.Sprintf(`statements:
        - "INSERT INTO %[3]s SELECT {{.HighWaterMark}}, count(*), strftime('%%Y-%%m-%%d %%H:%%M:%%f','now'), NULL FROM %[1]s WHERE _sluice_batch <= {{.HighWaterMark}}"
        - "INSERT INTO %[2]s SELECT id, name, price FROM %[1]s WHERE _sluice_batch <= {{.HighWaterMark}}"
        - "DELETE FROM %[1]s WHERE _sluice_batch <= {{.HighWaterMark}}"`, stg, fin, mlog)
}

func TestSQLSQLiteCreateTableAndIdleMerge(t *testing.T) {
	d := openSQL(t, "sqlite")
	pipe := sqlName("lite")
	d.exec(t, "CREATE TABLE films (id INTEGER, name TEXT, price REAL)")
	d.exec(t, "CREATE TABLE merge_log (hwm INTEGER, n INTEGER, started TEXT, ended TEXT)")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "lite", 3)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [lite], group: %s, consumers: 2}
format: {value: json}
delivery: exactly_once
sink:
  sqlite:
    path: %s
    staging_table: films_staging
    create_table: true
    merge:
      every_records: 1000
      idle: 300ms
      %s
`, pipe, brokers[0], pipe, d.path, sqliteMerge("films_staging", "films", "merge_log")))
	const bulk, tail = 3500, 400
	produceN(t, brokers, "lite", 0, bulk)
	eventually(t, 60*time.Second, "the bulk merged", func() bool { return d.count(t, "SELECT count(*) FROM films") >= bulk })
	// A tail below every_records: only the idle trigger can merge it.
	produceN(t, brokers, "lite", bulk, tail)
	const n = bulk + tail
	eventually(t, 30*time.Second, "the tail merged", func() bool { return d.count(t, "SELECT count(*) FROM films") >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, "films", "merge_log", n)
	if got := d.count(t, "SELECT count(*) FROM pragma_table_info('films_staging') WHERE name IN ('id','name','price','_topic','_partition','_offset','_timestamp','_key','_sluice_batch')"); got != 9 {
		t.Fatalf("create_table made %d of the 9 expected columns", got)
	}
	// The tail is below every_records, so only the idle trigger can merge
	// it; on a slow machine it may arrive in more than one idle period.
	h := sqlMerges(b)
	var total int64
	for _, m := range h {
		total += m.Records
	}
	if len(h) == 0 || h[len(h)-1].Trigger != connector.TriggerIdle || total != n {
		t.Fatalf("history %+v: want every record merged once (%d) and the tail merged by the idle trigger", h, n)
	}
}

func TestSQLSQLiteExactContinuousTwoConsumers(t *testing.T) {
	d := openSQL(t, "sqlite")
	pipe := sqlName("litex")
	d.exec(t, "CREATE TABLE stg (id INTEGER NOT NULL, name TEXT, price NUMERIC(8,2), _sluice_batch INTEGER NOT NULL DEFAULT 0)")
	d.exec(t, "CREATE TABLE fin (id INTEGER, name TEXT, price NUMERIC)")
	d.exec(t, "CREATE TABLE mlog (hwm INTEGER, n INTEGER, started TEXT, ended TEXT)")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "litex", 4)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [litex], group: %s, consumers: 2, properties: {max.poll.records: 61}}
format: {value: json}
sink:
  sqlite:
    path: %s
    staging_table: stg
    merge:
      every_records: 100
      exact: true
      mode: continuous
      %s
`, pipe, brokers[0], pipe, d.path, sqliteMerge("stg", "fin", "mlog")))
	const n = 1500
	produceN(t, brokers, "litex", 0, n)
	eventually(t, 60*time.Second, "all records merged", func() bool { return d.count(t, "SELECT count(*) FROM fin") >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, "fin", "mlog", n)
	if odd := d.count(t, "SELECT count(*) FROM mlog WHERE n <> 100"); odd != 0 {
		t.Fatalf("%d merges did not take exactly 100 rows", odd)
	}
	if h := sqlMerges(b); len(h) != n/100 {
		t.Fatalf("history has %d merges, want %d", len(h), n/100)
	}
}
