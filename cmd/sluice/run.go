package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newRunCommand(g *globalFlags) *cobra.Command {
	var adminListen, instanceID string
	cmd := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run the pipelines in one or more files",
		Long: `Run starts every pipeline in the given files in this process and runs them
until SIGINT or SIGTERM, then drains: consumers stop reading, in-flight
batches are written, and offsets of everything written are committed.
A second signal quits at once (nothing acked is lost; unacked records are
read again on restart). A pipeline with source.kafka.stop_at (a bounded
read) drains, commits and stops by itself, printing what it moved; sluice
run exits 0 once every pipeline has stopped.`,
		Example: `  sluice run films.yaml
  FILMS_DSN=postgres://localhost/test sluice run films.yaml orders.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			var pipelines []config.Pipeline
			var admin *config.Admin
			for _, path := range args {
				f, err := config.LoadFile(path)
				if err != nil {
					return err
				}
				pipelines = append(pipelines, f.Pipelines...)
				if f.Admin != nil && admin == nil {
					admin = f.Admin
				}
			}
			admin = withAdminListen(admin, adminListen)
			withInstanceID(pipelines, instanceID)
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return runPipelines(ctx, pipelines, admin, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&instanceID, "instance-id", "", "static group membership: group.instance.id of every Kafka source (each consumer appends its name); give each process its own, stable across restarts (e.g. the pod name), for rolling restarts without rebalances")
	cmd.Flags().StringVar(&adminListen, "admin", "", "admin API address (overrides admin.listen; default 127.0.0.1:8080 when the file has an admin section)")
	return cmd
}

// withAdminListen applies the --admin flag: it moves the admin API, and
// the file's token, allowed hosts and limits still apply.
func withAdminListen(fromFile *config.Admin, listen string) *config.Admin {
	if listen == "" {
		return fromFile
	}
	a := config.Admin{}
	if fromFile != nil {
		a = *fromFile
	}
	a.Listen = listen
	return &a
}

// withInstanceID applies --instance-id: it sets group.instance.id on every
// Kafka source, over the file's.
func withInstanceID(pipelines []config.Pipeline, id string) {
	if id == "" {
		return
	}
	for i := range pipelines {
		k := pipelines[i].Source.Kafka
		if k == nil {
			continue
		}
		props := make(map[string]any, len(k.Properties)+1)
		for name, v := range k.Properties {
			props[name] = v
		}
		props["group.instance.id"] = id
		k.Properties = props
	}
}

// runPipelines builds and runs pipelines until ctx is done or one fails.
func runPipelines(ctx context.Context, pipelines []config.Pipeline, admin *config.Admin, log *slog.Logger, out io.Writer) error {
	names := map[string]bool{}
	var built []*assembly.Built
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, b := range built {
			if err := b.Close(closeCtx); err != nil {
				log.Warn("closing pipeline", "pipeline", b.Config.Name, "err", err)
			}
		}
	}()
	for _, p := range pipelines {
		if names[p.Name] {
			return fmt.Errorf("pipeline name %q is used twice", p.Name)
		}
		names[p.Name] = true
		b, err := assembly.Build(ctx, p, log)
		if err != nil {
			if ctx.Err() != nil {
				// Ctrl-C while a pipeline waited for its sink (a database
				// that is not up yet): a stop, not a failure.
				log.Info("stopped while starting", "pipeline", p.Name, "err", err)
				return nil
			}
			return err
		}
		built = append(built, b)
	}
	grp, gctx := errgroup.WithContext(ctx)
	// The admin API stops once every pipeline has (bounded reads end).
	adminCtx, stopAdmin := context.WithCancel(gctx)
	defer stopAdmin()
	if admin != nil {
		if err := startAdmin(adminCtx, grp, admin, built, log); err != nil {
			return err
		}
	}
	var running sync.WaitGroup
	for _, b := range built {
		running.Add(1)
		grp.Go(func() error {
			defer running.Done()
			err := b.Pipeline.Run(gctx)
			if err == nil && b.Config.Source.Kafka != nil && b.Config.Source.Kafka.StopAt != nil && gctx.Err() == nil {
				printMoved(out, b.Pipeline.Name(), b.Pipeline.Status())
			}
			return err
		})
	}
	grp.Go(func() error {
		running.Wait()
		stopAdmin()
		return nil
	})
	err := grp.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// printMoved says what a bounded pipeline moved, per topic and partition.
func printMoved(w io.Writer, name string, st pipeline.Status) {
	var total int64
	var parts []string
	for _, p := range st.EventTime {
		total += p.Written
		parts = append(parts, fmt.Sprintf("%s/%d: %d", p.Topic, p.Partition, p.Written))
	}
	fmt.Fprintf(w, "pipeline %s: bounded read done: moved %d records", name, total)
	if len(parts) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	if st.DeadLettered+st.Skipped+st.Filtered > 0 {
		fmt.Fprintf(w, "; dead-lettered %d, skipped %d, filtered %d", st.DeadLettered, st.Skipped, st.Filtered)
	}
	fmt.Fprintln(w)
}
