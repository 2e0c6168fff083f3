package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/loadgen"
)

// runStudy is loadtest --study-connections: the same load once per
// connection count, with the brokers' figures read from metricsURLs,
// printed as a table and charted in report.
func runStudy(cmd *cobra.Command, o loadgen.ProduceOptions, connections []int, metricsURLs []string, report string) error {
	ctx, stop := signalContext(cmd.Context())
	defer stop()
	runs, err := loadgen.ConnectionStudy(ctx, o, connections, loadgen.MonitorOptions{MetricsURLs: metricsURLs})
	printStudy(cmd.OutOrStdout(), runs)
	if err != nil {
		return err
	}
	if report != "" {
		if err := loadgen.WriteReportFile(report, loadgen.StudyReport(runs)); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "report written to %s\n", report)
	}
	for _, r := range runs {
		if r.Result.Errors > 0 {
			return fmt.Errorf("%d records were not acked over %d connection(s)", r.Result.Errors, r.Connections)
		}
	}
	return nil
}

func printStudy(w io.Writer, runs []loadgen.StudyRun) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "connections\tbroker requests/s\topen connections (peak)\tingress MB/s\trecords acked\tproduce p99\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%s\t%v\t\n", r.Connections, r.SteadyRequests(), r.PeakConnections(),
			r.SteadyIngress()/1e6, count(r.Result.Records), loadgen.RoundLatency(r.Result.P99))
	}
	tw.Flush()
}
