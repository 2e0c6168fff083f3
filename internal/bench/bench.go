// Package bench is `sluice bench`: throughput of Kafka -> Kafka and
// Kafka -> file pipelines against a bare franz-go consume+produce loop, on
// the same broker and backlog. Each scenario runs in a child process so its
// CPU time and peak RSS are its own.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure a benchmark run.
type Options struct {
	Records    int
	Size       int      // value bytes (the Avro scenario uses its 20-field record)
	Registry   string   // schema registry URL with --brokers; the embedded one otherwise
	Partitions int32    // of the input topic
	Brokers    []string // empty: an embedded on-disk broker
	Scenarios  []string // default: all
	Self       string   // path of the sluice binary for child processes
	Out        io.Writer
	Progress   bool
	DataDir    string // for the embedded broker; default a temp dir
}

// Scenarios lists what can be run.
var Scenarios = []string{"baseline-kafka", "sluice-kafka", "baseline-kafka-eos", "sluice-kafka-eos", "baseline-file", "sluice-file", "sluice-avro-kafka",
	"sluice-json-kafka", "sluice-transform-kafka"}

// Result is one scenario's figures.
type Result struct {
	Scenario   string  `json:"scenario"`
	Records    int64   `json:"records"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Error      string  `json:"error,omitempty"`
}

// RecordsPerSecond is the throughput.
func (r Result) RecordsPerSecond() float64 { return float64(r.Records) / r.Seconds }

// avroRecordBytes is the size of the Avro scenario's encoded record.
const avroRecordBytes = 190

// Run preloads the backlog and runs each scenario in a child process.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios
	}
	brokers, registryURL := o.Brokers, o.Registry
	if len(brokers) == 0 {
		dir := o.DataDir
		if dir == "" {
			d, err := os.MkdirTemp("", "sluice-bench-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		stack, err := devstack.Start(ctx, devstack.Options{DataDir: dir})
		if err != nil {
			return nil, err
		}
		defer stack.Close()
		brokers, registryURL = stack.Brokers, stack.RegistryURL
	}
	run := time.Now().Format("150405")
	in := "bench.in." + run
	if err := preload(ctx, o, brokers, in); err != nil {
		return nil, err
	}
	var results []Result
	jsonLoaded := false
	for i, sc := range o.Scenarios {
		// A scenario may be listed twice (alternating runs): each run
		// has its own output topic and group.
		outTopic := fmt.Sprintf("bench.out.%s.%s.%d", sc, run, i)
		if err := createTopic(ctx, brokers, outTopic, o.Partitions); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp("", "sluice-bench-out-")
		if err != nil {
			return nil, err
		}
		job := Job{Scenario: sc, Brokers: brokers, InTopic: in, OutTopic: outTopic, Group: fmt.Sprintf("bench-%s-%s-%d", sc, run, i),
			Records: o.Records, OutFile: filepath.Join(tmp, "out.jsonl"), Registry: registryURL}
		recordBytes := int64(o.Size)
		if sc == "sluice-avro-kafka" {
			if registryURL == "" {
				return results, fmt.Errorf("scenario %s needs a schema registry: --registry with --brokers", sc)
			}
			job.InTopic = "bench.avro." + run
			if err := preloadAvro(ctx, brokers, registryURL, job.InTopic, o.Records, o.Partitions); err != nil {
				return results, err
			}
			recordBytes = avroRecordBytes
		}
		if jsonScenario(sc) {
			job.InTopic = "bench.json." + run
			if !jsonLoaded {
				if err := preloadJSON(ctx, brokers, job.InTopic, o.Records, o.Partitions); err != nil {
					return results, err
				}
				jsonLoaded = true
			}
			recordBytes = jsonRecordBytes
		}
		r, err := runChild(ctx, o.Self, job)
		os.RemoveAll(tmp)
		if err != nil {
			return results, fmt.Errorf("scenario %s: %w", sc, err)
		}
		r.Bytes = int64(o.Records) * recordBytes
		results = append(results, r)
		if o.Out != nil {
			fmt.Fprintf(o.Out, "%-15s %9.0f records/s\n", sc, r.RecordsPerSecond())
		}
	}
	return results, nil
}

// Print writes a results table.
func Print(w io.Writer, o Options, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\n%d records of %d B, %d partitions\n", o.Records, o.Size, o.Partitions)
	fmt.Fprintln(tw, "scenario\trecords/s\tMB/s\tseconds\tCPU s\tpeak RSS MB\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.0f\t\n", r.Scenario, r.RecordsPerSecond(),
			float64(r.Bytes)/r.Seconds/1e6, r.Seconds, r.CPUSeconds, r.PeakRSSMB)
	}
	tw.Flush()
}

func preload(ctx context.Context, o Options, brokers []string, topic string) error {
	if err := createTopic(ctx, brokers, topic, o.Partitions); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100000), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	var bar *progressbar.ProgressBar
	if o.Progress {
		bar = progressbar.Default(int64(o.Records), "preloading "+topic)
	}
	value := bytes.Repeat([]byte("x"), o.Size)
	errc := make(chan error, 1)
	for i := 0; i < o.Records; i++ {
		v := append([]byte(fmt.Sprintf("%010d", i)), value[min(10, len(value)):]...)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 10000)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
		if bar != nil && i%10000 == 0 {
			_ = bar.Set(i)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if bar != nil {
		_ = bar.Finish()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("preloading: %w", err)
	default:
	}
	return nil
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

// runChild runs one scenario as `sluice bench --child JSON` and takes its
// CPU time and peak RSS from the kernel's accounting of the child.
func runChild(ctx context.Context, self string, job Job) (Result, error) {
	spec, _ := json.Marshal(job)
	cmd := exec.CommandContext(ctx, self, "bench", "--child", string(spec))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("%w: %s", err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return Result{}, fmt.Errorf("reading child result %q: %w", stdout.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		r.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	if r.Error != "" {
		return r, fmt.Errorf("%s", r.Error)
	}
	return r, nil
}
