package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Job is what a child process runs.
type Job struct {
	Scenario string   `json:"scenario"`
	Brokers  []string `json:"brokers"`
	InTopic  string   `json:"in_topic"`
	OutTopic string   `json:"out_topic"`
	Group    string   `json:"group"`
	Records  int      `json:"records"`
	OutFile  string   `json:"out_file"`
	Registry string   `json:"registry,omitempty"`
}

// RunChild runs job in this process and returns its wall time. With
// SLUICE_BENCH_CPUPROFILE=DIR it writes DIR/<scenario>.pprof.
func RunChild(ctx context.Context, job Job) Result {
	if dir := os.Getenv("SLUICE_BENCH_CPUPROFILE"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, job.Scenario+".pprof")); err == nil {
			defer f.Close()
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile() // runs before the Close above
			}
		}
	}
	start := time.Now()
	var err error
	switch job.Scenario {
	case "baseline-kafka":
		err = bareLoop(ctx, job, nil)
	case "baseline-file":
		err = bareLoop(ctx, job, job.OutFile)
	case "baseline-kafka-eos":
		err = bareTransactLoop(ctx, job)
	case "sluice-kafka", "sluice-kafka-eos", "sluice-file", "sluice-avro-kafka", "sluice-json-kafka", "sluice-transform-kafka":
		err = sluicePipeline(ctx, job)
	default:
		err = fmt.Errorf("unknown scenario %q (known: %s)", job.Scenario, strings.Join(Scenarios, ", "))
	}
	r := Result{Scenario: job.Scenario, Records: int64(job.Records), Seconds: time.Since(start).Seconds()}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// bareLoop is the baseline: the simplest correct at-least-once franz-go
// program: poll, produce everything (or write it to a file), wait for the
// acks, commit what was polled.
func bareLoop(ctx context.Context, job Job, file any) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(job.Brokers...), kgo.ConsumerGroup(job.Group), kgo.ConsumeTopics(job.InTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var w *bufio.Writer
	var f *os.File
	if path, ok := file.(string); ok {
		f, err = os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = bufio.NewWriterSize(f, 256<<10)
	}
	done := 0
	for done < job.Records {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		if w != nil {
			fs.EachRecord(func(r *kgo.Record) {
				fmt.Fprintf(w, `{"topic":%q,"partition":%d,"offset":%d,"value":%q}`+"\n", r.Topic, r.Partition, r.Offset, r.Value)
				done++
			})
			if err := w.Flush(); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		} else {
			var wg sync.WaitGroup
			var perr error
			var mu sync.Mutex
			fs.EachRecord(func(r *kgo.Record) {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Topic: job.OutTopic, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						perr = err
						mu.Unlock()
					}
					wg.Done()
				})
				done++
			})
			wg.Wait()
			if perr != nil {
				return perr
			}
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return err
		}
	}
	return nil
}

// bareTransactLoop is the exactly-once baseline: franz-go's own
// GroupTransactSession loop (poll, begin, produce everything polled, end
// with a commit of the polled offsets), as its examples write it.
func bareTransactLoop(ctx context.Context, job Job) error {
	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(job.Brokers...), kgo.ConsumerGroup(job.Group), kgo.ConsumeTopics(job.InTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID("bench-"+job.Group), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer s.Close()
	done := 0
	for done < job.Records {
		fs := s.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		if err := s.Begin(); err != nil {
			return err
		}
		var perr error
		var mu sync.Mutex
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			s.Produce(ctx, &kgo.Record{Topic: job.OutTopic, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
			})
		})
		committed, err := s.End(ctx, kgo.TryCommit) // flushes first
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		if committed {
			done += n
		}
	}
	return nil
}

func sluicePipeline(ctx context.Context, job Job) error {
	sink := fmt.Sprintf("kafka: {brokers: [%s], topic: %s}", strings.Join(job.Brokers, ","), job.OutTopic)
	format := ""
	switch job.Scenario {
	case "sluice-kafka-eos":
		format = "delivery: exactly_once" // a transaction per batch, offsets inside it
	case "sluice-file":
		sink = fmt.Sprintf("file: {path: %s}", job.OutFile)
	case "sluice-transform-kafka":
		format = transformSteps
		sink = fmt.Sprintf("kafka: {brokers: [%s], topic: %s, format: {value: json}}", strings.Join(job.Brokers, ","), job.OutTopic)
	case "sluice-avro-kafka":
		// Decode every record and encode it again (a schema-changing copy
		// would do the same work).
		schema, _ := json.Marshal(Event20Schema)
		format = fmt.Sprintf("format: {value: avro-confluent, schema_registry: {url: %q}}", job.Registry)
		sink = fmt.Sprintf("kafka: {brokers: [%s], topic: %s, format: {value: avro-confluent, schema_registry: {url: %q}, schema: %s, subject_strategy: record}}",
			strings.Join(job.Brokers, ","), job.OutTopic, job.Registry, schema)
	}
	yaml := fmt.Sprintf(`
name: bench
source:
  kafka: {brokers: [%s], topics: [%s], group: %s}
%s
sink:
  %s
`, strings.Join(job.Brokers, ","), job.InTopic, job.Group, format, sink)
	f, err := config.Parse([]byte(yaml), os.LookupEnv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := assembly.Build(ctx, f.Pipelines[0], log)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(runCtx) }()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	// Records a filter dropped are done too.
	for st := b.Pipeline.Status(); st.RecordsOut+st.Filtered < int64(job.Records); st = b.Pipeline.Status() {
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("pipeline stopped early: %v", err)
		case <-t.C:
		}
	}
	cancel()
	return <-done
}
