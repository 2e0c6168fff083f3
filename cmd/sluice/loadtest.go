package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

func newLoadtestCommand() *cobra.Command {
	o := loadgen.ProduceOptions{}
	var kf kafkaFlags
	var report, schedule, schemaFile, controlAddr string
	var progress, keys bool
	var study []int
	var metricsURLs []string
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Produce load to a Kafka topic and report rate and latency",
		Long: `Loadtest produces records to a topic at a given rate, value size and key
cardinality, over one or more independent producer clients, and prints
what was acked: records, bytes, the achieved rate, and produce latency
(from the produce call to the broker's ack) at p50, p95 and p99.

--profile bursty repeats a cycle of --burst-every: --burst-duration at
--burst-rate, then --rate until the next burst (0: silent), the shortened
shape of "quiet for hours, then 50,000 records in two minutes".
--rate-schedule "0s:1000,30s:5000,60s:200" changes the total rate while
it runs, in steps, or with --ramp linearly between points; the report
draws the scheduled rate beside the achieved one. With --control ADDR,
"curl -X PUT -d 5000 http://ADDR/rate" sets the total rate for the rest
of the run (GET /rate reads it); in a terminal the + and - keys raise it
by a quarter or lower it by a fifth. The report lists and draws every
change.

Values are random bytes, or with --format json small web-shop events
({"id":..,"key":..,"ts":..,"kind":"purchase","user_id":..,"page":..,"amount":..,"country":..})
padded to about --size bytes, so they can feed JSON pipelines. With
--format avro, values are Avro in Confluent's wire format, of the schema
in --schema or a built-in shop event (a nested record, an array of
records, decimals, a timestamp, an enum, a UUID), registered in
--registry-url under <topic>-value; a top-level long "id" is the
record's sequence number. Keys are
key-0 .. key-(N-1), used in turn. The run stops after --duration or
--records, whichever comes first; Ctrl-C stops it early and still
reports. The exit status is 1 if any record was not acked.

--study-connections 1,5,20 repeats the published case study: the same
load once per count of producer connections, one after the other, while
it reads the brokers' own figures from --metrics-url; it prints each
run's broker requests/s, open connections and ingress, and --report
charts them, one line per run.`,
		Example: `  sluice loadtest --topic orders --create-topic --rate 10000 --duration 1m
  sluice loadtest --topic orders --records 1000000 --size 1024 --connections 4 --acks 1 --compression lz4
  sluice loadtest --topic events --format json --keys 1000 --rate 500 --duration 10m --report load.html
  sluice loadtest --topic orders --profile bursty --rate 0 --burst-rate 50000 --burst-duration 2s --burst-every 1m --duration 5m
  sluice loadtest --topic shop --create-topic --format avro --rate 2000 --duration 1m
  sluice loadtest --topic orders --rate-schedule "0s:1000,30s:5000,60s:200" --ramp --duration 90s
  sluice loadtest --topic study --create-topic --size 1024 --rate 5000 --duration 8s --study-connections 1,5,20 --metrics-url http://127.0.0.1:9308/metrics --report study.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := kf.options()
			if err != nil {
				return err
			}
			o.Brokers, o.ClientOptions = kf.brokers, opts
			producer, err := kf.producerProperties()
			if err != nil {
				return err
			}
			if err := applyProducerProperties(cmd.Flags(), producer, &o); err != nil {
				return err
			}
			if schedule != "" {
				if cmd.Flags().Changed("profile") && o.Profile.Kind != loadgen.ProfileSchedule {
					return fmt.Errorf("--rate-schedule: not with --profile %s", o.Profile.Kind)
				}
				points, err := loadgen.ParseRateSchedule(schedule)
				if err != nil {
					return fmt.Errorf("--rate-schedule: %w", err)
				}
				o.Profile.Kind, o.Profile.Points = loadgen.ProfileSchedule, points
			}
			if schemaFile != "" {
				if o.Format != loadgen.FormatAvro {
					return errors.New("--schema: only with --format avro")
				}
				text, err := os.ReadFile(schemaFile)
				if err != nil {
					return fmt.Errorf("--schema: %w", err)
				}
				o.AvroSchema = string(text)
			}
			if o.Records > 0 && !cmd.Flags().Changed("duration") {
				o.Duration = 0
			}
			if len(study) > 0 {
				return runStudy(cmd, o, study, metricsURLs, report)
			}
			var bar *progressbar.ProgressBar
			if progress {
				bar = newLoadBar(cmd.ErrOrStderr(), o)
				o.OnSample = func(s loadgen.ProduceSample) {
					if o.Records > 0 {
						_ = bar.Set64(s.TotalRecords)
						return
					}
					_ = bar.Set64(int64(s.Elapsed / time.Second))
					bar.Describe(fmt.Sprintf("%s acked, %s/s", count(s.TotalRecords), count(int64(float64(s.TotalRecords)/s.Elapsed.Seconds()))))
				}
			}
			if controlAddr != "" {
				o.Control = loadgen.NewRateControl()
				url, stopControl, err := serveRateControl(controlAddr, o.Control)
				if err != nil {
					return err
				}
				defer stopControl()
				fmt.Fprintf(cmd.ErrOrStderr(), "rate control: curl -X PUT -d 5000 %s\n", url)
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			stopKeys := func() {}
			if keys {
				if o.Control == nil {
					o.Control = loadgen.NewRateControl()
				}
				stopKeys = sync.OnceFunc(watchRateKeys(o.Control, stop, cmd.ErrOrStderr()))
				defer stopKeys()
			}
			res, err := loadgen.Produce(ctx, o)
			stopKeys() // the terminal back to normal before the summary
			if err != nil {
				return err
			}
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			printLoadSummary(cmd.OutOrStdout(), res)
			if report != "" {
				if err := loadgen.WriteReportFile(report, loadgen.ProduceReport(res)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "report written to %s\n", report)
			}
			if res.Errors > 0 {
				return fmt.Errorf("%d records were not acked", res.Errors)
			}
			return nil
		},
	}
	f := cmd.Flags()
	kf.register(f)
	f.StringVar(&o.Topic, "topic", "", "topic to produce to (required)")
	f.Float64Var(&o.Profile.Rate, "rate", 0, "records per second over all connections; 0: as fast as the brokers take them (bursty: the rate between bursts, 0: silent)")
	f.IntVar(&o.Size, "size", 100, "value size in bytes")
	f.Int64Var(&o.Keys, "keys", 0, "number of distinct keys, used in turn; 0: no key")
	f.IntVar(&o.Connections, "connections", 1, "independent producer clients, each with its own connections")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to produce (not applied when only --records is given)")
	f.Int64Var(&o.Records, "records", 0, "stop after this many records")
	f.StringVar(&o.Profile.Kind, "profile", loadgen.ProfileSteady, "steady, bursty or schedule (set by --rate-schedule)")
	f.StringVar(&schedule, "rate-schedule", "", `rate that changes while it runs, "TIME:RATE,...": "0s:1000,30s:5000,60s:200" holds each rate until the next point (the last one to the end)`)
	f.StringVar(&controlAddr, "control", "", "serve GET/PUT /rate on this loopback address (e.g. 127.0.0.1:8099) to change the total rate while it runs")
	f.BoolVar(&o.Profile.Ramp, "ramp", false, "--rate-schedule: change the rate linearly between points instead of in steps")
	f.Float64Var(&o.Profile.BurstRate, "burst-rate", 10000, "bursty: records per second during a burst; 0: as fast as possible")
	f.DurationVar(&o.Profile.BurstDuration, "burst-duration", 5*time.Second, "bursty: length of a burst")
	f.DurationVar(&o.Profile.BurstEvery, "burst-every", 30*time.Second, "bursty: a burst starts this often, the first at once")
	f.StringVar(&o.Format, "format", loadgen.FormatBytes, "values: bytes (random), json or avro (Confluent wire format; --size does not apply)")
	f.StringVar(&schemaFile, "schema", "", "--format avro: Avro schema file (.avsc) to generate values of (default: a built-in shop-event schema)")
	f.BoolVar(&o.SchemaEvolve, "schema-evolve", false, "--format avro: halfway through (--records or --duration), switch to the schema's next version, registered at the start: the same plus a nullable field "+loadgen.EvolvedField+" set to 2")
	f.StringVar(&o.RegistryURL, "registry-url", envOr("SLUICE_REGISTRY_URL", "http://127.0.0.1:8081"), "--format avro: schema registry to register the schema with, as <topic>-value (env SLUICE_REGISTRY_URL)")
	f.StringVar(&o.Acks, "acks", "all", "all, 1 or 0")
	f.StringVar(&o.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&o.Linger, "linger", 5*time.Millisecond, "producer linger (linger.ms)")
	f.BoolVar(&o.CreateTopic, "create-topic", false, "create the topic if it does not exist")
	f.Int32Var(&o.Partitions, "partitions", 6, "partitions of a topic created by --create-topic")
	f.Int16Var(&o.ReplicationFactor, "replication-factor", -1, "replication factor of a created topic (-1: the broker's default)")
	f.DurationVar(&o.SampleEvery, "interval", time.Second, "width of one point of the report's time series")
	f.StringVar(&report, "report", "", "write an HTML report (rate and latency over time) to this file")
	f.BoolVar(&progress, "progress", isTerminal(os.Stderr), "show a progress bar (default: when stderr is a terminal)")
	f.IntSliceVar(&study, "study-connections", nil, "run the load once per count of producer connections, e.g. 1,5,20, at the same total rate, and compare the brokers' requests/s, connections and ingress (needs --metrics-url); --report charts the runs")
	f.StringSliceVar(&metricsURLs, "metrics-url", nil, "--study-connections: Prometheus endpoint with the brokers' metrics, as for monitor (sluice dev: http://127.0.0.1:9308/metrics)")
	f.BoolVar(&keys, "rate-keys", isTerminal(os.Stdin), "change the rate with the + and - keys while it runs (default: when stdin is a terminal)")
	return cmd
}

// newLoadBar counts records when the run is bounded by --records, and
// seconds otherwise.
func newLoadBar(w io.Writer, o loadgen.ProduceOptions) *progressbar.ProgressBar {
	opts := []progressbar.Option{progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200 * time.Millisecond), progressbar.OptionSetElapsedTime(true)}
	if o.Records > 0 {
		return progressbar.NewOptions64(o.Records, append(opts, progressbar.OptionSetDescription("producing to "+o.Topic),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"))...)
	}
	return progressbar.NewOptions64(int64(o.Duration/time.Second), append(opts, progressbar.OptionSetDescription("producing to "+o.Topic))...)
}

func printLoadSummary(w io.Writer, r loadgen.ProduceResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	secs := r.Elapsed.Seconds()
	fmt.Fprintf(tw, "topic\t%s\n", r.Options.Topic)
	fmt.Fprintf(tw, "records acked\t%s (%.1f MB) in %v\n", count(r.Records), float64(r.Bytes)/1e6, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%s records/s, %.2f MB/s\n", count(int64(r.RecordsPerSecond())), float64(r.Bytes)/1e6/max(secs, 1e-9))
	fmt.Fprintf(tw, "latency (send to ack)\tp50 %v  p95 %v  p99 %v  max %v\n", loadgen.RoundLatency(r.P50), loadgen.RoundLatency(r.P95), loadgen.RoundLatency(r.P99), loadgen.RoundLatency(r.Max))
	fmt.Fprintf(tw, "errors\t%s\n", count(r.Errors))
	for _, e := range r.ErrorSummary() {
		fmt.Fprintf(tw, "\t%s\n", e)
	}
	tw.Flush()
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// applyProducerProperties takes linger.ms, batch.size, compression.type
// and acks from --command-config, unless the matching flag was given.
func applyProducerProperties(f *pflag.FlagSet, props map[string]string, o *loadgen.ProduceOptions) error {
	var errs []error
	for key, value := range props {
		switch key {
		case "linger.ms":
			if f.Changed("linger") {
				continue
			}
			ms, err := strconv.Atoi(value)
			if err != nil || ms < 0 {
				errs = append(errs, fmt.Errorf("--command-config: linger.ms=%s: want milliseconds >= 0", value))
				continue
			}
			o.Linger = time.Duration(ms) * time.Millisecond
			if ms == 0 {
				o.Linger = time.Nanosecond // 0 would mean the default, 5 ms
			}
		case "batch.size":
			n, err := strconv.ParseInt(value, 10, 32)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("--command-config: batch.size=%s: want bytes > 0", value))
				continue
			}
			o.BatchMaxBytes = int32(n)
		case "compression.type":
			if !f.Changed("compression") {
				o.Compression = value
			}
		case "acks":
			if !f.Changed("acks") {
				o.Acks = value
			}
		}
	}
	return errors.Join(errs...)
}
