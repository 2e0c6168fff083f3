package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmarks for issue 14 that need the whole product: a real Kafka
// source (kfake), and for exactly-once a real PostgreSQL. They report
// records/s per configuration; SLUICE_BENCH_RECORDS sets the backlog.
//
//	go test -run '^$' -bench 'WorkersPostgres5ms|KafkaClientTuning' -benchtime 1x ./internal/e2e/

func tuningBacklog(def int) int {
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_RECORDS")); err == nil && v > 0 {
		return v
	}
	return def
}

// tuningBroker starts a broker holding n JSON records over 1,000 keys in
// topic (of partitions partitions).
func tuningBroker(b *testing.B, topic string, partitions int32, n int) []string {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxBufferedRecords(50000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%1000), Value: fmt.Appendf(nil, `{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return brokers
}

// runUntil builds the pipeline of yaml, runs it until n records are
// written and returns how long that took, and how long the first 90%
// took (the rate while there is plenty to fetch; the last records may
// wait for fetch.max.wait.ms). during, if not nil, is called once the
// pipeline runs, with a context that ends with the run.
func runUntil(b *testing.B, yaml string, n int, during func(context.Context, *assembly.Built)) (all, most time.Duration) {
	b.Helper()
	f, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	built, err := assembly.Build(context.Background(), f.Pipelines[0], quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer built.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- built.Pipeline.Run(ctx) }()
	if during != nil {
		during(ctx, built)
	}
	for out := int64(0); out < int64(n); out = built.Pipeline.Status().RecordsOut {
		if most == 0 && out >= int64(n)*9/10 {
			most = time.Since(start)
		}
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	all = time.Since(start)
	if most == 0 {
		most = all
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return all, most
}

// BenchmarkWorkersPostgres5ms: a 1-partition topic into
// PostgreSQL with parallelism by key, delivery: exactly_once (and
// at_least_once, to tell what exactly-once costs on this database), where
// every write takes at least 5 ms in the database: a statement trigger on
// the table runs pg_sleep(0.005) inside the write's transaction, so the
// delay is where a remote database's is (the transaction, with its slot
// offset rows locked, stays open for it). Each worker writes with its
// own connection (max_connections: workers). The rows, the slot offsets
// and the commit are the real ones; the table is checked to hold every
// record (once, under exactly_once).
func BenchmarkWorkersPostgres5ms(b *testing.B) {
	n := tuningBacklog(50000)
	brokers := tuningBroker(b, "eos.in", 1, n)
	pg, err := pgx.Connect(context.Background(), sqlPostgresDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close(context.Background())
	exec := func(sql string) {
		if _, err := pg.Exec(context.Background(), sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	for _, bench := range []struct {
		delivery string
		workers  int
	}{
		{"exactly_once", 1}, {"exactly_once", 4}, {"exactly_once", 16}, {"exactly_once", 64},
		{"at_least_once", 1}, {"at_least_once", 4}, {"at_least_once", 16}, {"at_least_once", 64},
	} {
		workers := bench.workers
		b.Run(fmt.Sprintf("%s/by=key/workers=%d", bench.delivery, workers), func(b *testing.B) {
			var took time.Duration
			for i := 0; i < b.N; i++ {
				pipe := sqlName("eosbench")
				table, slow := pipe+"_rows", pipe+"_slow"
				exec(fmt.Sprintf("CREATE TABLE %s (id bigint, name text, price double precision)", table))
				exec(fmt.Sprintf("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN NULL; END $$", slow))
				exec(fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()", slow, table, slow))
				all, _ := runUntil(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [eos.in], group: %s}
format: {value: json}
delivery: %s
parallelism: {workers: %d, by: key}
batch: {max_records: 100, linger: 20ms}
sink:
  postgres: {dsn: %q, table: %s, max_connections: %d}
`, pipe, brokers[0], pipe, bench.delivery, workers, sqlPostgresDSN(), table, workers), n, nil)
				took += all
				var rows, ids int64
				if err := pg.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*), count(DISTINCT id) FROM %s", table)).Scan(&rows, &ids); err != nil {
					b.Fatal(err)
				}
				exec(fmt.Sprintf("DROP TABLE %s; DROP FUNCTION %s", table, slow))
				if bench.delivery == "exactly_once" {
					exec(fmt.Sprintf("DELETE FROM sluice_slot_offsets WHERE pipeline = '%s'", pipe))
				}
				if ids != int64(n) || bench.delivery == "exactly_once" && rows != int64(n) {
					b.Fatalf("%d rows, %d distinct ids; want %d of each", rows, ids, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "records/s")
		})
	}
}

// BenchmarkKafkaClientTuning: Kafka -> a file without fsync (a sink that
// is not the bottleneck), 6 partitions, one consumer, with one Kafka
// consumer property changed at a time from the defaults. A fresh group
// per run reads the whole backlog (after one run not counted, which warms
// the broker up). It reports records/s while 90% of the backlog is read,
// the seconds the last 10% took, and this process's CPU per record (the
// engine, the client and the in-process broker).
func BenchmarkKafkaClientTuning(b *testing.B) {
	n := tuningBacklog(1000000)
	brokers := tuningBroker(b, "tune.in", 6, n)
	run := func(b *testing.B, props string) (all, most time.Duration) {
		group := sqlName("tune")
		return runUntil(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [tune.in], group: %s, properties: {%s}}
sink:
  file: {path: %q, sync: false}
`, group, brokers[0], group, props, b.TempDir()+"/out.jsonl"), n, nil)
	}
	run(b, "")
	for _, tc := range []struct{ name, props string }{
		{"defaults", ""},
		{"max.poll.records=100", "max.poll.records: 100"},
		{"max.poll.records=2000", "max.poll.records: 2000"},
		{"max.poll.records=10000", "max.poll.records: 10000"},
		{"fetch.min.bytes=65536", "fetch.min.bytes: 65536"},
		{"fetch.min.bytes=1048576", "fetch.min.bytes: 1048576"},
		{"fetch.max.wait.ms=10", "fetch.max.wait.ms: 10"},
		{"fetch.max.wait.ms=500", "fetch.max.wait.ms: 500"},
		{"fetch.max.wait.ms=10000", "fetch.max.wait.ms: 10000"},
		{"fetch.min.bytes=1048576,fetch.max.wait.ms=500", "fetch.min.bytes: 1048576, fetch.max.wait.ms: 500"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var all, most time.Duration
			before := cpuTime()
			for i := 0; i < b.N; i++ {
				a, m := run(b, tc.props)
				all, most = all+a, most+m
			}
			b.ReportMetric(float64(n*9/10*b.N)/most.Seconds(), "records/s")
			b.ReportMetric((all-most).Seconds()/float64(b.N), "tail-s")
			b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(n*b.N), "cpu-µs/record")
		})
	}
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
