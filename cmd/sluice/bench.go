package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/internal/bench"
	"github.com/spf13/cobra"
)

func newBenchCommand(g *globalFlags) *cobra.Command {
	o := bench.Options{}
	var child, brokers, scenarios string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure pipeline throughput against a bare franz-go loop",
		Long: `Bench preloads a backlog into a topic on an embedded on-disk broker (or
--brokers), then runs each scenario in its own process over the whole
backlog and prints records/s, MB/s, CPU seconds and peak RSS:

  baseline-kafka  a bare franz-go consume -> produce -> commit loop
  sluice-kafka    a Sluice Kafka -> Kafka pipeline with default settings
  baseline-kafka-eos  franz-go's GroupTransactSession loop (exactly-once)
  sluice-kafka-eos  the Sluice pipeline with delivery: exactly_once
  baseline-file   a bare franz-go consume -> write+fsync -> commit loop
  sluice-file     a Sluice Kafka -> file pipeline with default settings
  sluice-avro-kafka  Kafka -> Kafka decoding and re-encoding 20-field Avro records
  sluice-json-kafka  Kafka -> Kafka copying JSON events as they are
  sluice-transform-kafka  the same events through a filter and two set steps`,
		Example: `  sluice bench
  sluice bench --records 1000000 --size 1024 --scenarios baseline-kafka,sluice-kafka`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if child != "" {
				var job bench.Job
				if err := json.Unmarshal([]byte(child), &job); err != nil {
					return err
				}
				r := bench.RunChild(cmd.Context(), job)
				return json.NewEncoder(os.Stdout).Encode(r)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o.Self = self
			o.Out = cmd.ErrOrStderr()
			if brokers != "" {
				o.Brokers = strings.Split(brokers, ",")
			}
			if scenarios != "" {
				o.Scenarios = strings.Split(scenarios, ",")
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			results, err := bench.Run(ctx, o)
			bench.Print(cmd.OutOrStdout(), o, results)
			return err
		},
	}
	cmd.Flags().IntVar(&o.Records, "records", 1000000, "records in the backlog")
	cmd.Flags().IntVar(&o.Size, "size", 100, "value size in bytes")
	cmd.Flags().Int32Var(&o.Partitions, "partitions", 6, "partitions of the input topic")
	cmd.Flags().StringVar(&brokers, "brokers", "", "use these brokers instead of an embedded on-disk broker")
	cmd.Flags().StringVar(&o.Registry, "registry", "", "schema registry URL for the Avro scenario with --brokers")
	cmd.Flags().StringVar(&scenarios, "scenarios", "", "comma-separated scenarios (default all): "+strings.Join(bench.Scenarios, ","))
	cmd.Flags().BoolVar(&o.Progress, "progress", true, "show a progress bar while preloading")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "broker data directory (default a temporary directory)")
	cmd.Flags().StringVar(&child, "child", "", "internal: run one scenario and print its result as JSON")
	_ = cmd.Flags().MarkHidden("child")
	return cmd
}
