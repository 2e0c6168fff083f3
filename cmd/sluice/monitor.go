package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

func newMonitorCommand() *cobra.Command {
	o := loadgen.MonitorOptions{}
	var kf kafkaFlags
	var report string
	var limitFlags []string
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Watch topics' produce rates and consumer groups' lag, and chart them",
		Long: `Monitor samples, every --interval, each topic's produce rate (from the
growth of its end offsets) and each consumer group's lag (end offsets
minus committed offsets), and prints one line per sample ("-": no rate
yet, or a group that does not exist yet). Without
--topics it watches every topic but internal ones; without --group every
group the brokers list; both are looked up again at each sample.

With --decode avro it also consumes the topics from their end and decodes
every value through the schema registry, showing decoded events/s per
topic (and failures, with the last reason), what a consumer of the
topic would see.

With --metrics-url it also reads what the brokers see, from a Prometheus
endpoint, at each sample: ingress and egress bytes/s, open connections,
requests/s by type, and a load from 0 to 100% (see the README's table for
what load means for each source), per broker and in total. The endpoint
is the embedded broker of "sluice dev" (http://127.0.0.1:9308/metrics), a
JMX exporter or Redpanda's /public_metrics (repeat the flag, one per
broker), or Confluent Cloud's export (API key and secret from
CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET); --metrics-source
tells them apart when the names do not. With --gcp-project and --cluster
it reads a Google Managed Kafka cluster's figures from Cloud Monitoring
instead (Application Default Credentials; points are a minute apart and
a few minutes late, so it asks every 30s). --limit draws a quota or
capacity across the matching chart (ingress=50MB/s, connections=1000,
requests=15000/s, load=80%).

It runs for --duration, or until Ctrl-C, and then writes --report: a
self-contained HTML page (no internet needed to open it) charting rate per
topic and lag per group over time, and the broker figures.`,
		Example: `  sluice monitor
  sluice monitor --topics orders,films --group films-to-postgres --interval 1s --duration 10m --report monitor.html
  sluice monitor --brokers broker1:9092 --group billing --group shipping
  sluice monitor --metrics-url http://127.0.0.1:9308/metrics --report cluster.html   # sluice dev
  sluice monitor --brokers b1:9092,b2:9092 --metrics-url http://b1:7071/metrics --metrics-url http://b2:7071/metrics
  sluice monitor --command-config gmk.properties --gcp-project shop-prod --cluster orders-kafka --limit ingress=30MB/s --report gmk.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := kf.options()
			if err != nil {
				return err
			}
			o.Brokers, o.ClientOptions = kf.brokers, opts
			// The Cloud API key goes to Confluent's endpoint only, never
			// to another one because it happens to be in the environment.
			if o.MetricsSource == loadgen.MetricsConfluent || allConfluentCloud(o.MetricsURLs) {
				o.MetricsUser, o.MetricsPassword = os.Getenv("CONFLUENT_CLOUD_API_KEY"), os.Getenv("CONFLUENT_CLOUD_API_SECRET")
				if o.MetricsUser == "" || o.MetricsPassword == "" {
					return errors.New("--metrics-url: Confluent Cloud's export needs CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET in the environment")
				}
			}
			var limits []loadgen.Limit
			for _, l := range limitFlags {
				limit, err := loadgen.ParseLimit(l)
				if err != nil {
					return err
				}
				limits = append(limits, limit)
			}
			table := &liveTable{w: cmd.OutOrStdout()}
			o.OnSample = table.print
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			samples, err := loadgen.Monitor(ctx, o)
			if err != nil {
				return err
			}
			if report != "" {
				if err := loadgen.WriteReportFile(report, loadgen.MonitorReport(o.Brokers, samples, limits...)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "report written to %s (%d samples)\n", report, len(samples))
			}
			return nil
		},
	}
	f := cmd.Flags()
	kf.register(f)
	f.StringSliceVar(&o.Topics, "topics", nil, "topics to watch, comma-separated (default: every topic but internal ones)")
	f.StringSliceVar(&o.Groups, "group", nil, "consumer group whose lag to watch; repeat or comma-separate (default: every group)")
	f.DurationVar(&o.Interval, "interval", time.Second, "time between samples (at least 100ms)")
	f.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	f.StringVar(&report, "report", "", "write an HTML report with charts over time to this file when done")
	f.StringVar(&o.Decode, "decode", "", "avro: also consume the topics and decode every value (Confluent wire format), showing decoded events/s and failures per topic")
	f.StringVar(&o.RegistryURL, "registry-url", envOr("SLUICE_REGISTRY_URL", "http://127.0.0.1:8081"), "--decode avro: schema registry (env SLUICE_REGISTRY_URL)")
	f.StringSliceVar(&o.MetricsURLs, "metrics-url", nil, "Prometheus endpoint with broker metrics; repeat for one per broker (sluice dev: http://127.0.0.1:9308/metrics)")
	f.StringVar(&o.MetricsSource, "metrics-source", loadgen.MetricsAuto, "whose metric names --metrics-url serves: auto, sluice, jmx, redpanda or confluent")
	f.StringVar(&o.GCPProject, "gcp-project", "", "Google Cloud project of a Managed Kafka cluster whose figures to read from Cloud Monitoring (with --cluster)")
	f.StringVar(&o.GCPCluster, "cluster", "", "Managed Kafka cluster, with --gcp-project: its ID, or its full name projects/P/locations/L/clusters/ID (which also pins the region)")
	f.StringArrayVar(&limitFlags, "limit", nil, "draw a limit across a broker chart, FIGURE=VALUE: ingress=50MB/s, egress=100MB/s, connections=1000, requests=15000/s, load=80%; repeatable")
	return cmd
}

// allConfluentCloud says every URL is on Confluent Cloud's telemetry API.
func allConfluentCloud(urls []string) bool {
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || !strings.HasSuffix(p.Hostname(), ".confluent.cloud") {
			return false
		}
	}
	return len(urls) > 0
}

// liveTable prints one row per sample: the rate of every topic and the lag
// of every group, with a header again whenever the columns change (a
// topic or group appeared) and every 20 rows.
type liveTable struct {
	w       io.Writer
	columns []string
	widths  []int
	rows    int
}

func (t *liveTable) print(s loadgen.MonitorSample) {
	columns := []string{"TIME"}
	values := []string{s.At.Format("15:04:05")}
	for _, tp := range s.Topics {
		columns = append(columns, tp.Topic+" rec/s")
		v := "-"
		if tp.HasRate {
			v = count(int64(tp.Rate + 0.5))
		}
		values = append(values, v)
		if tp.HasBytes {
			columns = append(columns, tp.Topic+" MB/s")
			values = append(values, fmt.Sprintf("%.2f", tp.BytesRate/1e6))
		}
		if tp.HasDecoded {
			columns = append(columns, tp.Topic+" ev/s")
			values = append(values, count(int64(tp.DecodedRate+0.5)))
			if tp.FailedRate > 0 {
				columns = append(columns, tp.Topic+" bad/s")
				values = append(values, count(int64(tp.FailedRate+0.5)))
			}
		}
	}
	if len(s.Brokers) > 0 {
		// Per broker when there are several, then the total.
		bs := s.Brokers
		if len(bs) > 1 {
			bs = append(slices.Clone(bs), s.BrokerTotal())
		}
		for _, b := range bs {
			prefix := ""
			if len(s.Brokers) > 1 {
				prefix = b.Broker + " "
			}
			rate := func(v float64, unit string) string {
				if !b.HasRate {
					return "-"
				}
				if unit == "MB/s" {
					return fmt.Sprintf("%.2f", v/1e6)
				}
				return count(int64(v + 0.5))
			}
			load := "-"
			if b.HasLoad {
				load = fmt.Sprintf("%.0f%%", 100*b.Load)
			}
			conns := count(int64(b.Connections))
			if b.ConnectionsUnknown {
				conns = "-"
			}
			columns = append(columns, prefix+"in MB/s", prefix+"out MB/s", prefix+"conns", prefix+"req/s", prefix+"load")
			values = append(values, rate(b.IngressBytes, "MB/s"), rate(b.EgressBytes, "MB/s"),
				conns, rate(b.RequestsTotal, "req/s"), load)
		}
	}
	for _, g := range s.Groups {
		columns = append(columns, "lag "+g.Group)
		v := count(g.Lag)
		switch {
		case g.Err != "":
			v = "error"
		case g.Missing:
			v = "-"
		}
		values = append(values, v)
		columns = append(columns, "lag age "+g.Group)
		age := "-"
		if g.HasLagSeconds {
			age = fmt.Sprintf("%.1fs", g.LagSeconds)
		}
		values = append(values, age)
	}
	if t.rows%20 == 0 || strings.Join(columns, "\x00") != strings.Join(t.columns, "\x00") {
		t.columns = columns
		t.widths = make([]int, len(columns))
		for i, c := range columns {
			t.widths[i] = max(len(c), 9)
		}
		t.row(columns)
	}
	t.row(values)
	t.rows++
	if s.Err != "" {
		fmt.Fprintf(t.w, "%s  error: %s\n", values[0], s.Err)
	}
	for _, g := range s.Groups {
		if g.Err != "" {
			fmt.Fprintf(t.w, "%s  group %s: %s\n", values[0], g.Group, g.Err)
		}
	}
}

func (t *liveTable) row(cells []string) {
	var b strings.Builder
	for i, c := range cells {
		if i == 0 {
			fmt.Fprintf(&b, "%-*s", t.widths[i], c)
			continue
		}
		fmt.Fprintf(&b, "  %*s", t.widths[i], c)
	}
	fmt.Fprintln(t.w, b.String())
}
