package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// sleepSink takes a fixed time per write, as a remote database does.
type sleepSink struct{ per time.Duration }

func (s sleepSink) Write(ctx context.Context, _ []*connector.Record) error {
	if s.per <= 0 {
		return nil
	}
	t := time.NewTimer(s.per)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sleepSink) Close(context.Context) error { return nil }

// countingSource serves n records of one partition over 1,000 keys,
// cycling over a pool (a heap of millions of records would make the
// garbage collector the thing measured), and counts acks without a lock,
// so that watching it costs the run nothing.
type countingSource struct {
	pool  []*connector.Record
	n     int64
	next  atomic.Int64
	acked atomic.Int64
}

func (s *countingSource) OpenReader(context.Context, string) (connector.Reader, error) {
	return s, nil
}

func (s *countingSource) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	pool := int64(len(s.pool))
	end := s.next.Add(int64(max))
	start := end - int64(max)
	if start >= s.n {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	end = min(end, s.n, start-start%pool+pool) // within the pool
	return s.pool[start%pool : start%pool+end-start], nil
}

func (s *countingSource) Ack(recs []*connector.Record) { s.acked.Add(int64(len(recs))) }

func (s *countingSource) Close(context.Context) error { return nil }

// moveAll moves b.N records of one partition over 1,000 keys through a
// pipeline with opts and reports records/s.
func moveAll(b *testing.B, opts Options) {
	src := &countingSource{pool: newKeyedSource(100_000, 1000).records, n: int64(b.N)}
	opts.Name, opts.Source, opts.Logger = "bench", src, quiet
	p, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	for {
		if src.acked.Load() == int64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// BenchmarkWorkersSlowSink: a 1-partition topic into a sink that takes
// 5 ms per write of up to 100 records, by workers and distribution.
func BenchmarkWorkersSlowSink(b *testing.B) {
	for _, by := range []Distribution{ByKey, ByRoundRobin} {
		for _, workers := range []int{1, 4, 16, 64} {
			b.Run(fmt.Sprintf("by=%s/workers=%d", by, workers), func(b *testing.B) {
				moveAll(b, Options{Sink: sleepSink{per: 5 * time.Millisecond}, Workers: workers, By: by,
					BatchRecords: 100, Linger: 20 * time.Millisecond})
			})
		}
	}
}

// BenchmarkWorkersFastSink: what redistribution costs when the sink is
// not the bottleneck (a sink that returns at once, default batches).
func BenchmarkWorkersFastSink(b *testing.B) {
	for _, tc := range []struct {
		name    string
		workers int
		by      Distribution
	}{{"none", 1, ""}, {"by=key/workers=4", 4, ByKey}, {"by=round_robin/workers=4", 4, ByRoundRobin}} {
		b.Run(tc.name, func(b *testing.B) {
			moveAll(b, Options{Sink: sleepSink{}, Workers: tc.workers, By: tc.by})
		})
	}
}
