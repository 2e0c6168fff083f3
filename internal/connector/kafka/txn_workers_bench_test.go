package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkExactlyOnceWorkers: 20,000 records of a 1-partition topic over
// 1,000 keys, exactly-once into a 4-partition topic of the same kfake
// broker, batch.max_records 100, by workers; with delay, the broker takes
// 5 ms to answer every produce request (a remote cluster's latency). Run
// with -benchtime 1x: each iteration moves the 20,000 records through a
// new group. Reports records/s and the process's CPU seconds (engine and
// broker together).
func BenchmarkExactlyOnceWorkers(b *testing.B) {
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		for _, workers := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("produce_delay=%v/workers=%d", delay, workers), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					moveExactlyOnce(b, delay, workers)
				}
			})
		}
	}
}

func moveExactlyOnce(b *testing.B, delay time.Duration, workers int) {
	const n, name = 20000, "eosbench"
	b.StopTimer()
	c, brokers := keyedInput(b, name, n, 1000)
	if delay > 0 {
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.SleepControl(func() { time.Sleep(delay) })
			return nil, nil, false
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cpu0 := cpuSeconds()
	start := time.Now()
	b.StartTimer()
	moveExactlyOnceByKey(b, ctx, brokers, name, n, 1<<20, pipeline.Options{Workers: workers,
		BatchRecords: 100, Linger: 20 * time.Millisecond, Logger: quietLog})
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuSeconds()-cpu0
	b.ReportMetric(n/elapsed.Seconds(), "records/s")
	b.ReportMetric(cpu, "cpu-s")
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// cpuSeconds is the user and system CPU time this process used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
