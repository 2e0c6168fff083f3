package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	kafkaconn "github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pgMerge makes a staging table, a final table without a unique key (so a
// row merged twice shows as a duplicate), a merge log and a procedure that
// moves the rows at or below the high-water mark, sleeping `sleep` seconds
// inside the merge.
type pgMerge struct {
	stg, fin, mlog, proc string
}

func setupPgMerge(t *testing.T, d *sqlDB, pipeline string, sleep float64) pgMerge {
	t.Helper()
	m := pgMerge{stg: sqlName("stg"), fin: sqlName("fin"), mlog: sqlName("mlog"), proc: sqlName("merge")}
	d.cleanupSQL(t, pipeline, "PROCEDURE "+m.proc, m.stg, m.fin, m.mlog)
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint NOT NULL, name text, price numeric(10,2), _topic text, _partition int, _offset bigint, _sluice_batch bigint NOT NULL DEFAULT 0)`, m.stg))
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint, name text, price numeric(10,2))`, m.fin))
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (hwm bigint, n bigint, started timestamptz, ended timestamptz)`, m.mlog))
	d.exec(t, fmt.Sprintf(`CREATE PROCEDURE %s(hwm bigint) LANGUAGE plpgsql AS $$
DECLARE n bigint; s timestamptz := clock_timestamp();
BEGIN
  INSERT INTO %s SELECT id, name, price FROM %s WHERE _sluice_batch <= hwm;
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM %s WHERE _sluice_batch <= hwm;
  PERFORM pg_sleep(%g);
  INSERT INTO %s VALUES (hwm, n, s, clock_timestamp());
END $$`, m.proc, m.fin, m.stg, m.stg, sleep, m.mlog))
	return m
}

// checkSQLFinal asserts the final table holds ids 0..n-1 exactly once each,
// and the merge log says every row was merged once.
func checkSQLFinal(t *testing.T, d *sqlDB, fin, mlog string, n int) {
	t.Helper()
	if got := d.count(t, "SELECT count(*) FROM "+fin); got != int64(n) {
		t.Fatalf("final table rows = %d, want %d", got, n)
	}
	if got := d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d", fin, n)); got != int64(n) {
		t.Fatalf("distinct ids in the final table = %d, want %d", got, n)
	}
	if got := d.count(t, "SELECT sum(n) FROM "+mlog); got != int64(n) {
		t.Fatalf("rows merged according to the merge log = %d, want %d", got, n)
	}
}

func TestSQLPostgresBurstyTrafficIdleMergesEachTail(t *testing.T) {
	bursts, every := []int{5000, 5800}, 2000
	if longRun() {
		bursts, every = []int{50000, 58000}, 7000
	}
	d := openSQL(t, "postgres")
	pipe := sqlName("bursty")
	m := setupPgMerge(t, d, pipe, 0)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "bursty", 6)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [bursty], group: %s, consumers: 2}
format: {value: json}
delivery: exactly_once
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: %d, exact: true, idle: 1s}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc, every))

	total := 0
	var tails []int // history length when each burst was fully merged
	for _, n := range bursts {
		produceN(t, brokers, "bursty", total, n)
		total += n
		eventually(t, 120*time.Second, fmt.Sprintf("%d records merged", total), func() bool {
			return d.count(t, "SELECT count(*) FROM "+m.fin) >= int64(total)
		})
		eventually(t, 30*time.Second, "the merge in the history", func() bool {
			var sum int64
			for _, mi := range sqlMerges(b) {
				sum += mi.Records
			}
			return sum >= int64(total)
		})
		tails = append(tails, len(sqlMerges(b)))
		time.Sleep(1500 * time.Millisecond) // quiet
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, total)
	h := sqlMerges(b)
	var sum int64
	for _, mi := range h {
		sum += mi.Records
		switch {
		case mi.Error != "":
			t.Fatalf("merge failed: %+v", mi)
		case mi.Ended.Before(mi.Started) || mi.FirstArrival.After(mi.Started) || mi.EndToEnd < mi.Took:
			t.Fatalf("inconsistent merge times: %+v", mi)
		case mi.Trigger == connector.TriggerRecords && mi.Records != int64(every),
			mi.Trigger == connector.TriggerIdle && mi.Records >= int64(every):
			t.Fatalf("merge %+v: exact batches of %d, idle merges of the rest", mi, every)
		}
	}
	// The tail of each burst, short of every_records, was merged by the
	// idle trigger. (A stall of the idle period inside a burst, such as
	// a rebalance, may add an idle merge, which is right too.)
	for i, n := range tails {
		if last := h[n-1]; last.Trigger != connector.TriggerIdle {
			t.Fatalf("burst %d ended with merge %+v, want an idle merge of its tail", i+1, last)
		}
	}
	if sum != int64(total) {
		t.Fatalf("history merged %d records, want %d", sum, total)
	}
	t.Logf("%d merges for bursts of %v", len(h), bursts)
}

func TestSQLPostgresExactBatchesOfOneHundredWithTwoConsumers(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("exact")
	m := setupPgMerge(t, d, pipe, 0)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "exact", 4)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [exact], group: %s, consumers: 2, properties: {max.poll.records: 37}}
format: {value: json}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 100, exact: true}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc))
	const n = 2000
	for i := 0; i < 4; i++ {
		produceN(t, brokers, "exact", i*n/4, n/4)
		time.Sleep(200 * time.Millisecond)
	}
	eventually(t, 60*time.Second, "all records merged", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	if odd := d.count(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE n <> 100", m.mlog)); odd != 0 {
		t.Fatalf("%d merges in the database log did not take exactly 100 rows", odd)
	}
	h := sqlMerges(b)
	if len(h) != n/100 {
		t.Fatalf("history has %d merges, want %d", len(h), n/100)
	}
	for _, mi := range h {
		if mi.Records != 100 || mi.Trigger != connector.TriggerRecords {
			t.Fatalf("merge %+v: want exactly 100 records, trigger records", mi)
		}
	}
}

func TestSQLPostgresPauseModeNoInsertWhileAMergeRuns(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("pause")
	m := setupPgMerge(t, d, pipe, 0.3)
	inslog := sqlName("inslog")
	d.cleanupSQL(t, pipe, inslog, "FUNCTION "+inslog+"_f")
	// A statement trigger stamps every COPY into staging with the time.
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (at timestamptz)`, inslog))
	d.exec(t, fmt.Sprintf(`CREATE FUNCTION %s_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO %s VALUES (clock_timestamp()); RETURN NULL; END $$`, inslog, inslog))
	d.exec(t, fmt.Sprintf(`CREATE TRIGGER %s_t AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s_f()`, inslog, m.stg, inslog))
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "pause", 6)
	_, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [pause], group: %s, consumers: 3}
format: {value: json}
batch: {max_records: 200, linger: 20ms}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1000, idle: 300ms, mode: pause}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc))
	const n = 6000
	for i := 0; i < n; i += 250 { // a steady stream, so inserts would land inside merges if they could
		produceN(t, brokers, "pause", i, 250)
		time.Sleep(30 * time.Millisecond)
	}
	eventually(t, 60*time.Second, "all records merged", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	ms := d.intervals(t, fmt.Sprintf("SELECT started, ended FROM %s ORDER BY started", m.mlog))
	if len(ms) < 3 {
		t.Fatalf("only %d merges; the test needs several", len(ms))
	}
	inserts := d.count(t, "SELECT count(*) FROM "+inslog)
	during := d.count(t, fmt.Sprintf("SELECT count(*) FROM %s i JOIN %s m ON i.at > m.started AND i.at < m.ended", inslog, m.mlog))
	if during != 0 {
		t.Fatalf("%d of %d staging inserts happened while a merge ran", during, inserts)
	}
	t.Logf("%d merges, %d staging inserts, none during a merge", len(ms), inserts)
}

func TestSQLPostgresTwoPipelinesSameGroupMergeOneAtATime(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("scale")
	m := setupPgMerge(t, d, pipe, 0.1)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "scale", 6)
	// The same pipeline file run twice: two "processes" sharing the group
	// and the database.
	yaml := fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [scale], group: %s, consumers: 1}
format: {value: json}
delivery: exactly_once
batch: {max_records: 500}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1000, idle: 300ms}
`, pipe, brokers[0], pipe, d.dsn, m.stg, m.proc)
	b1, stop1 := runPipeline(t, yaml)
	b2, stop2 := runPipeline(t, yaml)
	const n = 12000
	for i := 0; i < n; i += 1000 {
		produceN(t, brokers, "scale", i, 1000)
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, 90*time.Second, "all records merged", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n })
	for _, stop := range []func() error{stop1, stop2} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	ms := d.intervals(t, fmt.Sprintf("SELECT started, ended FROM %s ORDER BY started", m.mlog))
	for i := 1; i < len(ms); i++ {
		if ms[i][0].Before(ms[i-1][1]) {
			t.Fatalf("merges overlap: %v-%v and %v-%v", ms[i-1][0], ms[i-1][1], ms[i][0], ms[i][1])
		}
	}
	n1, n2 := len(sqlMerges(b1)), len(sqlMerges(b2))
	t.Logf("%d merges, none overlapping (process 1: %d, process 2: %d)", len(ms), n1, n2)
	if int64(n1+n2) != int64(len(ms)) {
		t.Fatalf("histories hold %d+%d merges, the database log %d:\n%+v\n%+v", n1, n2, len(ms), sqlMerges(b1), sqlMerges(b2))
	}
}

func TestSQLPostgresBadInputGoesToTheDeadLetterTopic(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("bad")
	stg := sqlName("stg")
	d.cleanupSQL(t, pipe, stg)
	d.exec(t, fmt.Sprintf(`CREATE TABLE %s (id integer NOT NULL, name varchar(20), price numeric(8,2) NOT NULL)`, stg))
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "bad", 1)
	produceN(t, brokers, "bad", 0, 50)
	sqlProduceJSON(t, brokers, "bad", `{"id":"x","name":"wrong type","price":1}`, `{"name":"no id","price":1}`, `{"id":7,"name":"b","price":"abc"}`, `{"id":8,"name":`)
	produceN(t, brokers, "bad", 50, 50)
	_, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [bad], group: %s}
format: {value: json}
on_error: dlq
sink:
  postgres: {dsn: %q, table: %s}
`, pipe, brokers[0], pipe, d.dsn, stg))
	eventually(t, 60*time.Second, "the good rows", func() bool { return d.count(t, "SELECT count(*) FROM "+stg) >= 100 })
	dead := sqlConsumeRecords(t, brokers, "bad.dlq", 4, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The sink parses JSON values itself: a malformed one is still bad
	// input, dead-lettered with the JSON decoder's reason and message.
	want := map[string]string{"50": "column id", "51": "column id", "52": "column price", "53": "unexpected end of JSON input"}
	for _, r := range dead {
		off := sqlHeader(r, kafkaconn.HeaderOffset)
		msg := sqlHeader(r, kafkaconn.HeaderError)
		col, ok := want[off]
		if off == "53" {
			if !ok || sqlHeader(r, kafkaconn.HeaderReason) != "json" || !strings.Contains(msg, col) || string(r.Value) != `{"id":8,"name":` {
				t.Errorf("dead letter at offset 53: reason %q, %q, value %q; want the malformed JSON with reason json", sqlHeader(r, kafkaconn.HeaderReason), msg, r.Value)
			}
			delete(want, off)
			continue
		}
		if !ok || !strings.Contains(msg, "table "+stg) || !strings.Contains(msg, col) || !strings.Contains(msg, "offset "+off) {
			t.Errorf("dead letter at offset %s: %q should name table %s, %s and offset %s", off, msg, stg, col, off)
		}
		delete(want, off)
	}
	if len(want) > 0 {
		t.Fatalf("records not dead-lettered: %v", want)
	}
	if got := d.count(t, "SELECT count(*) FROM "+stg); got != 100 {
		t.Fatalf("rows = %d, want 100", got)
	}
}

func TestSQLPostgresDatabaseDownRetriesAndCatchesUp(t *testing.T) {
	outage := 3 * time.Second
	if longRun() {
		outage = 20 * time.Second
	}
	d := openSQL(t, "postgres")
	pipe := sqlName("down")
	m := setupPgMerge(t, d, pipe, 0)
	proxy := startFaultProxy(t, "127.0.0.1:5432")
	dsn := strings.Replace(d.dsn, "127.0.0.1:5432", proxy.Addr(), 1)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "down", 3)
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [down], group: %s, consumers: 2}
format: {value: json}
delivery: exactly_once
batch: {max_records: 300}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1500, idle: 300ms}
`, pipe, brokers[0], pipe, dsn, m.stg, m.proc))
	const n = 8000
	produceN(t, brokers, "down", 0, n/2)
	eventually(t, 30*time.Second, "the first rows", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) > 0 })
	// The database goes down: new connections are refused, open ones
	// break.
	if err := proxy.Refuse(); err != nil {
		t.Fatal(err)
	}
	proxy.ResetAll()
	downAt := time.Now()
	produceN(t, brokers, "down", n/2, n/2)
	time.Sleep(outage - time.Since(downAt))
	if err := proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "every record after the outage", func() bool { return d.count(t, "SELECT count(*) FROM "+m.fin) >= n })
	retries := b.Pipeline.Status().Retries
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	if retries == 0 {
		t.Fatal("no write was retried: the outage did not hit the pipeline")
	}
	t.Logf("database down for %v: %d write retries, nothing lost or duplicated", outage, retries)
}

func sqlProduceJSON(t *testing.T, brokers []string, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// sqlConsumeRecords reads topic from the start until it holds want
// records, failing after deadline. One client reads on: an attempt per
// poll that started over with a new client had 2 s to read everything,
// which a loaded machine may never manage.
func sqlConsumeRecords(t *testing.T, brokers []string, topic string, want int, deadline time.Duration) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	consumeEach(t, brokers, topic, want, deadline, func(r *kgo.Record) { out = append(out, r) })
	if len(out) < want {
		t.Fatalf("timed out after %v waiting for %d records in %s (read %d)", deadline, want, topic, len(out))
	}
	return out
}

func sqlHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
