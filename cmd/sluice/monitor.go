package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

func newMonitorCommand() *cobra.Command {
	o := loadgen.MonitorOptions{}
	var kf kafkaFlags
	var report string
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Watch topics' produce rates and consumer groups' lag, and chart them",
		Long: `Monitor samples, every --interval, each topic's produce rate (from the
growth of its end offsets) and each consumer group's lag (end offsets
minus committed offsets), and prints one line per sample ("-": no rate
yet, or a group that does not exist yet). Without
--topics it watches every topic but internal ones; without --group every
group the brokers list; both are looked up again at each sample.

It runs for --duration, or until Ctrl-C, and then writes --report: a
self-contained HTML page (no internet needed to open it) charting rate per
topic and lag per group over time.`,
		Example: `  sluice monitor
  sluice monitor --topics orders,films --group films-to-postgres --interval 1s --duration 10m --report monitor.html
  sluice monitor --brokers broker1:9092 --group billing --group shipping`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Brokers = kf.brokers
			opts, err := kf.options()
			if err != nil {
				return err
			}
			o.ClientOptions = opts
			table := &liveTable{w: cmd.OutOrStdout()}
			o.OnSample = table.print
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			samples, err := loadgen.Monitor(ctx, o)
			if err != nil {
				return err
			}
			if report != "" {
				if err := loadgen.WriteReportFile(report, loadgen.MonitorReport(o.Brokers, samples)); err != nil {
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
	return cmd
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
