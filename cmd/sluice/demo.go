package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
)

func newDemoCommand(g *globalFlags) *cobra.Command {
	f := &devFlags{}
	var (
		outDir   string
		rate     int
		duration time.Duration
		admin    string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded stack with sample data and pipelines, and show them working",
		Long: `Demo starts the embedded stack (Kafka broker, Schema Registry, BigQuery and
Pub/Sub emulators, in memory), generates sample shop events, Avro purchases
and device alerts, and runs five pipelines over them:

  events-to-kafka        Kafka -> Kafka, two consumers, exactly once
                         (a Kafka transaction per batch, offsets inside it)
  events-to-file         Kafka -> a JSON-lines file
  orders-to-sqlite       Kafka -> SQLite staging, merged into orders and
                         page_views_per_page every 2,000 records or 3 s idle
  purchases-to-bigquery  Avro (Schema Registry) -> BigQuery, a table per
                         event type over 2 connections
  alerts-from-pubsub     Pub/Sub -> Kafka, ordering key -> Kafka key

It prints a live summary (redrawn on a terminal; one line per pipeline every
5 s when piped) until Ctrl-C or --duration, and serves the dashboard on
--admin. The pipeline file it runs is written to --out-dir; at the end the
demo prints the commands that run that file yourself with 'sluice dev' and
'sluice run'.`,
		Example: `  sluice demo
  sluice demo --duration 30s --rate 5000
  sluice demo --kafka-port 19092 --out-dir /tmp/sluice-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") && os.Getenv("SLUICE_LOG_LEVEL") == "" {
				// The live summary is the demo's output; lifecycle lines
				// (joins, merges) would scroll it away. Warnings still show.
				g.logLevel = "warn"
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			o := demo.Options{
				Stack:       f.options(),
				OutDir:      outDir,
				Rate:        rate,
				Duration:    duration,
				Out:         cmd.OutOrStdout(),
				Logger:      log,
				Interactive: term.IsTerminal(int(os.Stdout.Fd())),
				Admin:       admin,
			}
			o.Stack.Logger = log
			if admin != "" {
				o.OnReady = func(ctx context.Context, grp *errgroup.Group, built []*assembly.Built) error {
					if err := startAdmin(ctx, grp, &config.Admin{Listen: admin}, built, log); err != nil {
						return fmt.Errorf("%w (choose another address with --admin, or --admin '' to run without)", err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Dashboard and admin API on http://%s/ (sluice status --admin http://%s)\n", admin, admin)
					return nil
				}
			}
			return demo.Run(ctx, o)
		},
	}
	// Auto-created topics: the pipeline file the demo writes also works
	// against a fresh `sluice dev --auto-create-topics`.
	f.register(cmd, true, true)
	cmd.Flags().StringVar(&outDir, "out-dir", "sluice-demo", "directory for the demo's pipeline file and output")
	cmd.Flags().IntVar(&rate, "rate", 2000, "sample events per second")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:8080", "admin API and dashboard address (empty to disable)")
	return cmd
}
