package bigquery

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSinkWriteDelivery compares at-least-once (default stream,
// multiplexed) with exactly-once (a PENDING stream per table per batch,
// finalized and committed, offsets deduplicated) for the 20-field record
// into 1 and 100 tables, max_connections 4. One op is a 10,000-record
// batch; two writers run at once, each owning a partition. cpu_s is the
// process's CPU seconds, the in-process emulator included.
//
//	go test -run '^$' -bench SinkWriteDelivery -benchtime 20x ./internal/connector/bigquery/
func BenchmarkSinkWriteDelivery(b *testing.B) {
	const batch, writers = 10000, 2
	for _, tables := range []int{1, 100} {
		for _, eos := range []bool{false, true} {
			name := "at_least_once"
			if eos {
				name = "exactly_once"
			}
			b.Run(fmt.Sprintf("tables=%d/%s", tables, name), func(b *testing.B) {
				e, addrs := startEmulator(b, bqemu.Faults{})
				s := newSinkWith(b, Options{Config: sinkConfig(addrs, "{{.Topic}}"), ExactlyOnce: eos})
				ctx := context.Background()
				if err := s.Write(ctx, benchRecords(0, max(tables, 100), tables)); err != nil { // create the tables
					b.Fatal(err)
				}
				// Writer w owns partition w: its batches come in offset
				// order, as one consumer's do.
				recs := make([][]*connector.Record, b.N)
				for i := range b.N {
					recs[i] = benchRecords((i+1)*batch, batch, tables)
					for _, r := range recs[i] {
						r.Partition = int32(i % writers)
					}
				}
				e.ResetStats()
				cpu := cpuTime(b)
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range writers {
					wg.Go(func() {
						for i := w; i < b.N; i += writers {
							if err := s.Write(ctx, recs[i]); err != nil {
								b.Error(err)
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu = cpuTime(b) - cpu
				if got := e.Stats().RowsAppended; got != int64(b.N*batch) {
					b.Fatalf("%d rows appended, want %d", got, b.N*batch)
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(cpu.Seconds(), "cpu_s")
				b.ReportMetric(float64(e.Stats().PeakStreams), "peak_streams")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
