package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newTopicsCommand() *cobra.Command {
	var kf kafkaFlags
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List, create, describe and delete Kafka topics",
		Example: `  sluice topics list
  sluice topics create films --partitions 6 --config retention.ms=86400000
  sluice topics describe films
  sluice topics delete films --brokers broker1:9092`,
	}
	kf.register(cmd.PersistentFlags())
	// withAdmin runs fn with an admin client on --brokers and a 30 s
	// deadline, and closes the client afterwards.
	withAdmin := func(fn func(ctx context.Context, adm *kadm.Client) error) error {
		opts, err := kf.options()
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return fn(ctx, kadm.NewClient(cl))
	}

	list := &cobra.Command{
		Use:     "list",
		Short:   "List topics with partition counts",
		Example: "  sluice topics list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(func(ctx context.Context, adm *kadm.Client) error {
				td, err := adm.ListTopics(ctx)
				if err != nil {
					return fmt.Errorf("listing topics on %v: %w", kf.brokers, err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TOPIC\tPARTITIONS\tREPLICAS")
				for _, t := range td.Sorted() {
					fmt.Fprintf(w, "%s\t%d\t%d\n", t.Topic, len(t.Partitions), t.Partitions.NumReplicas())
				}
				return w.Flush()
			})
		},
	}

	var partitions int32
	var replication int16
	var configs []string
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a topic",
		Example: "  sluice topics create films --partitions 6 --replication-factor 1 --config cleanup.policy=compact",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := map[string]*string{}
			for _, kv := range configs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--config %q: use key=value", kv)
				}
				cfg[k] = &v
			}
			return withAdmin(func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.CreateTopic(ctx, partitions, replication, cfg, args[0])
				if err == nil {
					err = resp.Err
				}
				if err != nil {
					return fmt.Errorf("creating topic %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %d partitions\n", args[0], partitions)
				return nil
			})
		},
	}
	create.Flags().Int32Var(&partitions, "partitions", 1, "number of partitions")
	create.Flags().Int16Var(&replication, "replication-factor", -1, "replication factor (-1: the broker's default)")
	create.Flags().StringArrayVar(&configs, "config", nil, "topic config key=value (repeatable)")

	describe := &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show a topic's partitions, leaders, in-sync replicas, offsets and configs",
		Example: "  sluice topics describe films",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(func(ctx context.Context, adm *kadm.Client) error {
				td, err := adm.ListTopics(ctx, args[0])
				if err != nil {
					return fmt.Errorf("describing %s: %w", args[0], err)
				}
				t, ok := td[args[0]]
				if !ok || t.Err != nil {
					return fmt.Errorf("topic %s does not exist", args[0])
				}
				starts, _ := adm.ListStartOffsets(ctx, args[0])
				ends, _ := adm.ListEndOffsets(ctx, args[0])
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "topic %s: %d partitions\n", t.Topic, len(t.Partitions))
				fmt.Fprintln(w, "PARTITION\tLEADER\tREPLICAS\tISR\tSTART\tEND")
				for _, p := range t.Partitions.Sorted() {
					s, _ := starts.Lookup(args[0], p.Partition)
					e, _ := ends.Lookup(args[0], p.Partition)
					fmt.Fprintf(w, "%d\t%d\t%v\t%v\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.ISR, s.Offset, e.Offset)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				rc, err := adm.DescribeTopicConfigs(ctx, args[0])
				if err == nil {
					if c, err := rc.On(args[0], nil); err == nil {
						var lines []string
						for _, kv := range c.Configs {
							if kv.Source == 1 { // set on the topic, not inherited defaults
								lines = append(lines, fmt.Sprintf("  %s=%s", kv.Key, kv.MaybeValue()))
							}
						}
						sort.Strings(lines)
						if len(lines) > 0 {
							fmt.Fprintln(cmd.OutOrStdout(), "configs:")
							fmt.Fprintln(cmd.OutOrStdout(), strings.Join(lines, "\n"))
						}
					}
				}
				return nil
			})
		},
	}

	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a topic",
		Example: "  sluice topics delete films",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(func(ctx context.Context, adm *kadm.Client) error {
				resp, err := adm.DeleteTopic(ctx, args[0])
				if err == nil {
					err = resp.Err
				}
				if err != nil {
					return fmt.Errorf("deleting topic %s: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, create, describe, del)
	return cmd
}
