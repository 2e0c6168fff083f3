package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
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
//	go test -run '^$' -bench 'WorkersExactlyOncePostgres|KafkaClientTuning' -benchtime 1x ./internal/e2e/

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
// written and returns how long that took.
func runUntil(b *testing.B, yaml string, n int) time.Duration {
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
	for built.Pipeline.Status().RecordsOut < int64(n) {
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	took := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}

// BenchmarkWorkersExactlyOncePostgres: a 1-partition topic into
// PostgreSQL with delivery: exactly_once and parallelism by key, where
// every write takes at least 5 ms in the database: a statement trigger on
// the table runs pg_sleep(0.005) inside the write's transaction, so the
// delay is where a remote database's is (the transaction, with its slot
// offset rows locked, stays open for it). Each worker writes with its
// own connection (max_connections: workers). The rows, the slot offsets
// and the commit are the real ones; the table is checked to hold every
// record once.
func BenchmarkWorkersExactlyOncePostgres(b *testing.B) {
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
	for _, workers := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("by=key/workers=%d", workers), func(b *testing.B) {
			var took time.Duration
			for i := 0; i < b.N; i++ {
				pipe := sqlName("eosbench")
				table, slow := pipe+"_rows", pipe+"_slow"
				exec(fmt.Sprintf("CREATE TABLE %s (id bigint, name text, price double precision)", table))
				exec(fmt.Sprintf("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN NULL; END $$", slow))
				exec(fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()", slow, table, slow))
				took += runUntil(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [eos.in], group: %s}
format: {value: json}
delivery: exactly_once
parallelism: {workers: %d, by: key}
batch: {max_records: 100, linger: 20ms}
sink:
  postgres: {dsn: %q, table: %s, max_connections: %d}
`, pipe, brokers[0], pipe, workers, sqlPostgresDSN(), table, workers), n)
				var rows, ids int64
				if err := pg.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*), count(DISTINCT id) FROM %s", table)).Scan(&rows, &ids); err != nil {
					b.Fatal(err)
				}
				exec(fmt.Sprintf("DROP TABLE %s; DROP FUNCTION %s; DELETE FROM sluice_slot_offsets WHERE pipeline = '%s'", table, slow, pipe))
				if rows != int64(n) || ids != int64(n) {
					b.Fatalf("%d rows, %d distinct ids; want %d of each", rows, ids, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "records/s")
		})
	}
}

// BenchmarkKafkaClientTuning: Kafka -> a file (a sink that is not the
// bottleneck), 6 partitions, one consumer, with one Kafka consumer
// property changed at a time from the defaults. A fresh group per run
// reads the whole backlog.
func BenchmarkKafkaClientTuning(b *testing.B) {
	n := tuningBacklog(300000)
	brokers := tuningBroker(b, "tune.in", 6, n)
	for _, tc := range []struct{ name, props string }{
		{"defaults", ""},
		{"max.poll.records=100", "max.poll.records: 100"},
		{"max.poll.records=2000", "max.poll.records: 2000"},
		{"max.poll.records=10000", "max.poll.records: 10000"},
		{"fetch.min.bytes=65536", "fetch.min.bytes: 65536"},
		{"fetch.min.bytes=1048576", "fetch.min.bytes: 1048576"},
		{"fetch.max.wait.ms=10", "fetch.max.wait.ms: 10"},
		{"fetch.max.wait.ms=100", "fetch.max.wait.ms: 100"},
		{"fetch.max.wait.ms=2000", "fetch.max.wait.ms: 2000"},
		{"fetch.min.bytes=1048576,fetch.max.wait.ms=2000", "fetch.min.bytes: 1048576, fetch.max.wait.ms: 2000"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var took time.Duration
			for i := 0; i < b.N; i++ {
				group := sqlName("tune")
				took += runUntil(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [tune.in], group: %s, properties: {%s}}
sink:
  file: {path: %q, sync: false}
`, group, brokers[0], group, tc.props, b.TempDir()+"/out.jsonl"), n)
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "records/s")
		})
	}
}
