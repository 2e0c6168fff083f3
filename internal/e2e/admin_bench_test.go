package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkKafkaToKafkaObservability measures what Kafka client metrics
// (kprom hooks) and a running admin server cost a Kafka -> Kafka pipeline:
// "bare" runs without either, "observed" with both, the other two with one
// each. With the server, a client reads /metrics and the pipeline's status
// four times a second (a dashboard polls once a second). Every run copies
// the same backlog with a new consumer group; the engine's own counters
// are always on. It reports records/s per variant and the overhead of
// "observed" over "bare" (SLUICE_BENCH_RECORDS sets the backlog, default
// 200,000; use enough for runs of a few seconds):
//
//	SLUICE_BENCH_RECORDS=2000000 go test -run '^$' -bench KafkaToKafkaObservability -benchtime 3x ./internal/e2e/
func BenchmarkKafkaToKafkaObservability(b *testing.B) {
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	if err := backlog(brokers, n); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runs := 0
	variants := []struct {
		name                  string
		clientMetrics, server bool
	}{
		{"bare", false, false},
		{"client-metrics", true, false},
		{"admin-server", false, true},
		{"observed", true, true},
	}
	// The variants take turns, in a rotating order, so that a machine
	// busy with something else slows them alike.
	took := make([]time.Duration, len(variants))
	for i := 0; i < b.N; i++ {
		for k := range variants {
			j := (i + k) % len(variants)
			v := variants[j]
			metrics.SetKafkaClientMetrics(v.clientMetrics)
			runs++ // a new group each time: a used one has committed the end
			took[j] += copyBacklog(b, brokers, fmt.Sprintf("bench-%s-%d", v.name, runs), n, v.server, quiet)
		}
	}
	metrics.SetKafkaClientMetrics(true)
	rate := func(j int) float64 { return float64(n*b.N) / took[j].Seconds() }
	for j, v := range variants {
		b.ReportMetric(rate(j), v.name+"-rec/s")
	}
	b.ReportMetric(100*(1-rate(3)/rate(0)), "observed-overhead-%")
}

// backlog creates bench.in and writes n records to it.
func backlog(brokers []string, n int) error {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxBufferedRecords(50000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 6, 1, nil, "bench.in"); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: "bench.in", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000))}, nil)
	}
	return cl.Flush(ctx)
}

// copyBacklog runs a pipeline over the backlog with a fresh group until
// all n records are written, and returns how long that took.
func copyBacklog(b *testing.B, brokers []string, group string, n int, observed bool, log *slog.Logger) time.Duration {
	b.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 6, 1, nil, group+".out"); err != nil {
		b.Fatal(err)
	}
	// Free the copy afterwards, so the broker's memory does not grow run
	// after run and slow the later variants.
	defer kadm.NewClient(adm).DeleteTopics(context.Background(), group+".out")
	runtime.GC()
	var during func(context.Context, *assembly.Built)
	if observed {
		during = func(ctx context.Context, built *assembly.Built) {
			base := serveAdmin(b, ctx, built, time.Second, log)
			go scrape(ctx, base+"/metrics", base+"/v1/pipelines/"+group)
		}
	}
	took, _ := runUntil(b, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [bench.in], group: %s, consumers: 2}
sink:
  kafka: {brokers: [%s], topic: %s.out}
`, group, brokers[0], group, brokers[0], group), n, during)
	return took
}

// scrape reads urls four times a second until ctx ends, as Prometheus and
// a dashboard would (more often than either).
func scrape(ctx context.Context, urls ...string) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, u := range urls {
			req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}
