// Command sluice moves event streams between Kafka, Pub/Sub, BigQuery and
// SQL databases. This package is CLI wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sluice-dev/sluice/internal/buildinfo"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Move event streams between Kafka, Pub/Sub, BigQuery and SQL databases",
		Long: `Sluice moves event streams between Kafka, Google Pub/Sub, BigQuery and SQL
databases, committing source offsets only once the sink has made records
durable, with bounded memory and live control over running pipelines.`,
		Example: `  sluice demo                      # everything embedded, no Docker, no cloud
  sluice dev                       # just the embedded broker and emulators
  sluice run pipeline.yaml         # run pipelines from a file
  sluice validate pipeline.yaml    # check a file without running it`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("SLUICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SLUICE_LOG_LEVEL)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", envOr("SLUICE_LOG_FORMAT", "text"), "log format: text or json (env SLUICE_LOG_FORMAT)")
	root.AddCommand(
		newVersionCommand(),
		newRunCommand(g),
		newValidateCommand(),
		newConfigCommand(),
		newTopicsCommand(),
		newPubSubCommand(),
		newDevCommand(g),
		newDemoCommand(g),
		newBenchCommand(g),
		newStatusCommand(),
		newLoadtestCommand(),
		newMonitorCommand(),
		newTailCommand(),
		newClusterCommand(),
		newOffsetsCommand(),
	)
	return root
}

func (g *globalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", g.logFormat)
	}
}

// signalContext is cancelled on the first SIGINT or SIGTERM, which starts
// a graceful drain, or when parent is (a test running a command); a second
// signal exits at once.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "\nsluice: stopping gracefully (press Ctrl-C again to quit at once)")
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "sluice: quitting without draining")
		os.Exit(130)
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the revision it was built from",
		Long: `Version prints the module version and the git revision, its time and
whether uncommitted changes were built, as the Go toolchain stamped them
into the binary (go build or go install from a checkout). Release builds
set the version with
  -ldflags "-X github.com/sluice-dev/sluice/internal/buildinfo.Version=v1.2.0".
A running process answers the same at GET /v1/version.`,
		Example: "  sluice version\n  sluice version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			_, err := fmt.Fprint(cmd.OutOrStdout(), info.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (as GET /v1/version)")
	return cmd
}
