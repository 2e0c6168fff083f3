package sql_test

// Kafka -> SQL throughput, measured through the whole engine: an in-process
// kfake broker holds SLUICE_BENCH_RECORDS (default 1,000,000) JSON records
// of ~210 bytes on 6 partitions; each benchmark reads them all with a fresh
// consumer group into a staging table (optionally merging every 100,000)
// and reports records/s, the CPU of this process (engine + kfake broker +
// client) and of the database server per record.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 1h ./internal/connector/sql/
//
// Baselines in the same run: psql \copy and LOAD DATA LOCAL INFILE of the
// same rows from a file, sqlite3 .import, and one row per autocommit
// INSERT. They need psql, mysql and sqlite3 on PATH.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

func benchValue(i int) string {
	return fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5,"category":"category-%02d","sku":"SKU-%08d","description":"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor","in_stock":%t,"updated_at":"2024-05-01T12:34:56Z"}`,
		i, i, i%1000, i%20, i, i%3 == 0)
}

const benchColumns = "id bigint, name text, price numeric(10,2), category text, sku text, description text, in_stock boolean, updated_at %s, _topic text, _partition integer, _offset bigint, _sluice_batch bigint NOT NULL DEFAULT 0"

var (
	benchOnce    sync.Once
	benchBrokers []string
)

// benchTopic fills one broker for every benchmark of the run.
func benchTopic(b *testing.B) []string {
	benchOnce.Do(func() {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		benchBrokers = c.ListenAddrs()
		cl, err := kgo.NewClient(kgo.SeedBrokers(benchBrokers...), kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < benchRecords(); i++ {
			cl.Produce(context.Background(), &kgo.Record{Topic: "bench", Key: []byte("k" + strconv.Itoa(i)), Value: []byte(benchValue(i))}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total != int64(benchRecords()) {
			b.Fatalf("topic holds %d records, want %d", total, benchRecords())
		}
	})
	return benchBrokers
}

// cpu is user+system CPU of this process and of the database server's
// processes (by command name).
type cpu struct{ self, server time.Duration }

func cpuNow(server string) cpu {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := cpu{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if server == "" {
		return c
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	tick := 10 * time.Millisecond // USER_HZ = 100 on Linux
	for _, f := range dirs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 || s[open+1:end] != server {
			continue
		}
		// utime, stime, and cutime, cstime: the postmaster reaps its
		// backends, so their CPU stays counted after they exit.
		fields := strings.Fields(s[end+2:])
		if len(fields) > 14 {
			for _, i := range []int{11, 12, 13, 14} {
				v, _ := strconv.ParseInt(fields[i], 10, 64)
				c.server += time.Duration(v) * tick
			}
		}
	}
	return c
}

func report(b *testing.B, what string, n int, took time.Duration, before, after cpu) {
	rate := float64(n) / took.Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(float64((after.self-before.self).Microseconds())/float64(n), "sluice-cpu-µs/record")
	b.ReportMetric(float64((after.server-before.server).Microseconds())/float64(n), "db-cpu-µs/record")
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.Logf("%-44s %9d records %7.2fs %10.0f records/s  cpu sluice %6.2fs db %6.2fs  peak RSS %d MiB",
		what, n, took.Seconds(), rate, (after.self - before.self).Seconds(), (after.server - before.server).Seconds(), ru.Maxrss/1024)
}

// benchPipeline is the pipeline assembly.Build would make, built here
// from the parts so this package's tests do not depend on every connector.
type benchPipeline struct {
	p    *pipeline.Pipeline
	sink connector.Sink
}

func buildBench(b *testing.B, yaml string) *benchPipeline {
	f, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	pc := f.Pipelines[0]
	kind, cfg := "postgres", pc.Sink.Postgres
	if pc.Sink.MySQL != nil {
		kind, cfg = "mysql", pc.Sink.MySQL
	} else if pc.Sink.SQLite != nil {
		kind, cfg = "sqlite", pc.Sink.SQLite
	}
	log := testLogger()
	// What assembly.Build does: the sink decodes values field by field.
	fo := codec.Options{Value: codec.Format(pc.Format.Value)}
	if r := pc.Format.SchemaRegistry; r != nil {
		fo.SchemaRegistry = codec.RegistryOptions{URL: r.URL}
	}
	fields, err := codec.NewDecoder(fo)
	if err != nil {
		b.Fatal(err)
	}
	sink, err := sqlsink.New(context.Background(), sqlsink.Options{Kind: kind, Config: *cfg, Pipeline: pc.Name, Fields: fields, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	src, err := kafka.NewSource(*pc.Source.Kafka, kafka.SourceOptions{Pipeline: pc.Name, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	var dec codec.Decoder = fields
	if vs, ok := sink.(connector.FieldVisitorSink); ok && vs.VisitsFields() {
		dec = codec.Raw{}
	}
	p, err := pipeline.New(pipeline.Options{Name: pc.Name, Source: src, Consumers: pc.Source.Kafka.Consumers,
		Decoder: dec, Sink: sink, OnError: pipeline.OnErrorFail, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	return &benchPipeline{p: p, sink: sink}
}

// runKafkaToSQL runs a pipeline from the bench topic until done says n
// records are through (durable in staging, or merged).
func runKafkaToSQL(b *testing.B, kind, server string, sink string, consumers, n int, done func(*benchPipeline) int64) {
	brokers := benchTopic(b)
	runKafkaToSQLFormat(b, kind, server, sink, consumers, n, done, brokers, "bench", "{value: json}")
}

func runKafkaToSQLFormat(b *testing.B, kind, server string, sink string, consumers, n int, done func(*benchPipeline) int64, brokers []string, topic, format string) {
	group := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	built := buildBench(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [%s], group: %s, consumers: %d}
format: %s
sink:
  %s: %s
`, group, brokers[0], topic, group, consumers, format, kind, sink))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	b.ResetTimer()
	before, start := cpuNow(server), time.Now()
	go func() { stopped <- built.p.Run(ctx) }()
	for done(built) < int64(n) {
		select {
		case err := <-stopped:
			b.Fatalf("pipeline stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	took, after := time.Since(start), cpuNow(server)
	b.StopTimer()
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
	_ = built.sink.Close(context.Background())
	report(b, b.Name(), n, took, before, after)
}
