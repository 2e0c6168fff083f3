package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// setupMySQLMerge is setupPgMerge for MySQL/MariaDB: a stored procedure
// taking the high-water mark.
func setupMySQLMerge(t *testing.T, d *sqlDB, pipeline string) pgMerge {
	t.Helper()
	m := pgMerge{stg: sqlName("stg"), fin: sqlName("fin"), mlog: sqlName("mlog"), proc: sqlName("merge")}
	d.cleanupSQL(t, pipeline, "PROCEDURE "+m.proc, m.stg, m.fin, m.mlog)
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id int NOT NULL, name varchar(20), price decimal(8,2), _partition int, _offset bigint, _sluice_batch bigint NOT NULL DEFAULT 0)`, m.stg))
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id int, name varchar(20), price decimal(8,2))`, m.fin))
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (hwm bigint, n bigint, started datetime(6), ended datetime(6))`, m.mlog))
	d.exec(t, fmt.Sprintf(`CREATE PROCEDURE %s(IN hwm BIGINT)
BEGIN
  DECLARE s DATETIME(6) DEFAULT NOW(6);
  DECLARE n BIGINT;
  INSERT INTO %s SELECT id, name, price FROM %s WHERE _sluice_batch <= hwm;
  SET n = ROW_COUNT();
  DELETE FROM %s WHERE _sluice_batch <= hwm;
  INSERT INTO %s VALUES (hwm, n, s, NOW(6));
END`, m.proc, m.fin, m.stg, m.stg, m.mlog))
	return m
}

func TestSQLMySQLExactBatchesAndBadInputSkipped(t *testing.T) {
	d := openSQL(t, "mysql")
	pipe := sqlName("myexact")
	m := setupMySQLMerge(t, d, pipe)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "myexact", 4)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [myexact], group: %s, consumers: 2, properties: {max.poll.records: 43}}
format: {value: json}
on_error: skip
sink:
  mysql:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 100, exact: true}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc))
	const n = 1000
	for i := 0; i < 5; i++ {
		produceN(t, brokers, "myexact", i*n/5, n/5)
		sqlProduceJSON(t, brokers, "myexact", `{"id":"not a number","name":"x","price":1}`)
	}
	// The last bad record comes after the last good one: wait for both.
	eventually(t, 60*time.Second, "all good records merged and 5 bad ones skipped", func() bool {
		return d.count(t, "SELECT count(*) FROM "+m.fin) >= n && b.Pipeline.Status().Skipped == 5
	})
	st := b.Pipeline.Status()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	if odd := d.count(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE n <> 100", m.mlog)); odd != 0 {
		t.Fatalf("%d merges did not take exactly 100 rows", odd)
	}
	for _, mi := range sqlMerges(b) {
		if mi.Records != 100 {
			t.Fatalf("merge %+v: want exactly 100 records", mi)
		}
	}
	if st.Skipped != 5 {
		t.Fatalf("skipped %d bad records, want 5", st.Skipped)
	}
}

func TestSQLMySQLContinuousExactlyOnce(t *testing.T) {
	d := openSQL(t, "mysql")
	pipe := sqlName("mycont")
	m := setupMySQLMerge(t, d, pipe)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "mycont", 6)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [mycont], group: %s, consumers: 3}
format: {value: json}
delivery: exactly_once
batch: {max_records: 700}
sink:
  mysql:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 2000, idle: 300ms, mode: continuous}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc))
	const n, tail = 12000, 300
	for i := 0; i < n; i += 2000 {
		produceN(t, brokers, "mycont", i, 2000)
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 60*time.Second, "the bulk merged", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n })
	// A tail below every_records: only the idle trigger can merge it.
	produceN(t, brokers, "mycont", n, tail)
	eventually(t, 30*time.Second, "the tail merged", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n+tail })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n+tail)
	h := sqlMerges(b)
	if last := h[len(h)-1]; last.Trigger != connector.TriggerIdle || last.Records != tail {
		t.Fatalf("last merge = %+v, want the idle merge of the %d-record tail", last, tail)
	}
}
