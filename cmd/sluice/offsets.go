package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
	"github.com/sluice-dev/sluice/internal/offsets"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetsFlags select the pipeline and partitions of an offsets command.
type offsetsFlags struct {
	pipeline   string
	topic      string
	partitions []int
}

func (f *offsetsFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "the pipeline's name, when the file holds several")
	cmd.Flags().StringVar(&f.topic, "topic", "", "only this topic (default: every topic of the pipeline)")
	cmd.Flags().IntSliceVar(&f.partitions, "partitions", nil, "only these partitions, e.g. 0,1 (default: all)")
}

func (f *offsetsFlags) filter() offsets.Filter {
	out := offsets.Filter{Topic: f.topic}
	for _, p := range f.partitions {
		out.Partitions = append(out.Partitions, int32(p))
	}
	return out
}

func newOffsetsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsets",
		Short: "Show or reset where a pipeline resumes reading Kafka",
		Long: `A Kafka pipeline resumes from its consumer group's committed offsets or,
with delivery: exactly_once into PostgreSQL, MySQL/MariaDB or SQLite, from
the offsets the sink stores with its rows (table sluice_offsets), which
take precedence. These commands show and change both.

A pipeline whose stored offsets do not fit the log (the topic was
recreated, an in-memory broker restarted, retention deleted unread
records) stops with an error naming the partition; reset it here.`,
		Example: `  sluice offsets show films.yaml
  sluice offsets reset films.yaml --to-earliest              # dry run: prints the plan
  sluice offsets reset films.yaml --to-earliest --execute`,
	}
	cmd.AddCommand(newOffsetsShowCommand(), newOffsetsResetCommand())
	return cmd
}

func newOffsetsShowCommand() *cobra.Command {
	var f offsetsFlags
	cmd := &cobra.Command{
		Use:   "show PIPELINE.yaml",
		Short: "Show the group's and the sink's offsets, the log's start and end, and the lag",
		Long: `Show prints, for every partition of the pipeline's topics, the consumer
group's committed offset, the sink's stored offset (exactly-once SQL
sinks), the log's start and end offsets and the lag from where the
pipeline resumes (the sink's offset if it has one, else the group's). A
position outside the log is flagged: the pipeline will stop on it.`,
		Example: `  sluice offsets show films.yaml
  sluice offsets show pipelines.yaml --pipeline films --topic films --partitions 0,1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPipelineOffsets(args[0], f.pipeline, func(ctx context.Context, pl offsets.Pipeline) error {
				ps, err := offsets.Positions(ctx, pl, f.filter())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s, group %s%s\n", pl.Name, pl.Group, storeNote(pl))
				return offsets.WriteShow(cmd.OutOrStdout(), ps, pl.Store != nil)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func newOffsetsResetCommand() *cobra.Command {
	var f offsetsFlags
	var earliest, latest, execute bool
	var toOffset int64
	var toTime string
	cmd := &cobra.Command{
		Use:   "reset PIPELINE.yaml (--to-earliest | --to-latest | --to-offset N | --to-time T) [--execute]",
		Short: "Move where a stopped pipeline resumes (dry run unless --execute)",
		Long: `Reset moves the position of the selected partitions, in the consumer
group and, for exactly-once SQL sinks, in the sink's sluice_offsets table,
like kafka-consumer-groups --reset-offsets. Without --execute it only
prints the plan: current and new offset, the log's start and end, and the
lag after the reset. Every process running the pipeline must be stopped
first: a group with active members is refused.

  --to-earliest   the log start: read everything still in the log again
  --to-latest     the log end: skip everything already in the log
  --to-offset N   offset N (within the log) of each selected partition
  --to-time T     the first record at or after T (RFC 3339), or the log end`,
		Example: `  sluice offsets reset films.yaml --to-earliest
  sluice offsets reset films.yaml --to-earliest --execute
  sluice offsets reset films.yaml --topic films --partitions 0,1 --to-offset 1200 --execute
  sluice offsets reset films.yaml --to-time 2026-12-01T08:00:00Z --execute`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var target offsets.Target
			chosen := 0
			if earliest {
				target.Earliest = true
				chosen++
			}
			if latest {
				target.Latest = true
				chosen++
			}
			if cmd.Flags().Changed("to-offset") {
				target.Offset = &toOffset
				chosen++
			}
			if toTime != "" {
				t, err := parseResetTime(toTime)
				if err != nil {
					return err
				}
				target.Time = &t
				chosen++
			}
			if chosen != 1 {
				return errors.New("choose exactly one of --to-earliest, --to-latest, --to-offset N, --to-time T")
			}
			return withPipelineOffsets(args[0], f.pipeline, func(ctx context.Context, pl offsets.Pipeline) error {
				ps, err := offsets.Positions(ctx, pl, f.filter())
				if err != nil {
					return err
				}
				if err := offsets.Plan(ctx, pl, ps, target); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "pipeline %s, group %s%s: reset %s\n", pl.Name, pl.Group, storeNote(pl), target)
				if err := offsets.WriteReset(out, ps); err != nil {
					return err
				}
				if !execute {
					if err := offsets.ActiveMembers(ctx, pl); err != nil {
						fmt.Fprintln(out, "note:", err)
					}
					fmt.Fprintln(out, "dry run: nothing changed; add --execute to apply")
					return nil
				}
				if err := offsets.Apply(ctx, pl, ps); err != nil {
					return err
				}
				fmt.Fprintf(out, "reset %d partition(s)\n", len(ps))
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&earliest, "to-earliest", false, "reset to the log start")
	cmd.Flags().BoolVar(&latest, "to-latest", false, "reset to the log end")
	cmd.Flags().Int64Var(&toOffset, "to-offset", 0, "reset to this offset")
	cmd.Flags().StringVar(&toTime, "to-time", "", "reset to the first record at or after this time (RFC 3339, e.g. 2026-12-01T08:00:00Z)")
	cmd.Flags().BoolVar(&execute, "execute", false, "apply the reset (default: dry run)")
	return cmd
}

func parseResetTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Time{}, fmt.Errorf("--to-time %q: use RFC 3339 (2026-12-01T08:00:00Z) or Unix milliseconds", s)
}

func storeNote(pl offsets.Pipeline) string {
	if pl.Store == nil {
		return ""
	}
	return ", sink offsets in table " + pl.Store.Name()
}

// withPipelineOffsets loads the pipeline named name from path (the only
// one when name is empty), connects to its Kafka cluster and, for
// exactly-once SQL sinks, to its database, and runs fn within a minute.
func withPipelineOffsets(path, name string, fn func(ctx context.Context, pl offsets.Pipeline) error) error {
	f, err := config.LoadFile(path)
	if err != nil {
		return err
	}
	p, err := pickPipeline(f, name)
	if err != nil {
		return err
	}
	k := p.Source.Kafka
	if k == nil {
		return fmt.Errorf("pipeline %s does not read Kafka: it has no offsets", p.Name)
	}
	opts, err := kafka.ConnOptions(k.KafkaConn, nil)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pl := offsets.Pipeline{Name: p.Name, Group: k.Group, Topics: k.Topics, TopicRegex: k.TopicRegex, Admin: kadm.NewClient(cl)}
	if p.Delivery == config.ExactlyOnce {
		kind, cfg := sqlSinkOf(p)
		if cfg != nil {
			table, err := sqlsink.OpenOffsetTable(ctx, kind, *cfg, p.Name)
			if err != nil {
				return fmt.Errorf("opening the offsets of pipeline %s in %s: %w", p.Name, kind, err)
			}
			defer table.Close()
			pl.Store = table
		}
	}
	return fn(ctx, pl)
}

func pickPipeline(f *config.File, name string) (config.Pipeline, error) {
	var names []string
	for _, p := range f.Pipelines {
		if p.Name == name || (name == "" && len(f.Pipelines) == 1) {
			return p, nil
		}
		names = append(names, p.Name)
	}
	if name == "" {
		return config.Pipeline{}, fmt.Errorf("the file holds %d pipelines (%s): choose one with --pipeline", len(names), strings.Join(names, ", "))
	}
	return config.Pipeline{}, fmt.Errorf("--pipeline %s: the file holds %s", name, strings.Join(names, ", "))
}

// sqlSinkOf is the SQL sink block of p, if it has one.
func sqlSinkOf(p config.Pipeline) (string, *config.SQLSink) {
	switch {
	case p.Sink.Postgres != nil:
		return "postgres", p.Sink.Postgres
	case p.Sink.MySQL != nil:
		return "mysql", p.Sink.MySQL
	case p.Sink.SQLite != nil:
		return "sqlite", p.Sink.SQLite
	}
	return "", nil
}
