package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newClusterCommand() *cobra.Command {
	var kf kafkaFlags
	cmd := &cobra.Command{
		Use:     "cluster",
		Short:   "Describe the Kafka cluster",
		Example: "  sluice cluster describe --brokers broker1:9092",
	}
	kf.register(cmd.PersistentFlags())
	describe := &cobra.Command{
		Use:   "describe",
		Short: "List brokers with their racks, the controller, and each broker's partition leaders and replicas",
		Long: `Describe lists the cluster's id, its controller and every broker (node id,
host:port, rack) with the number of topics and partitions it leads and
replicates, internal topics included: the view to check that load is
spread before a load test.`,
		Example: "  sluice cluster describe\n  sluice cluster describe --brokers broker1:9092 --tls",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := kf.options()
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			md, err := kadm.NewClient(cl).Metadata(ctx)
			if err != nil {
				return fmt.Errorf("describing the cluster on %s: %w", strings.Join(kf.brokers, ","), err)
			}
			type load struct{ leaderTopics, leaders, replicas int }
			byBroker := map[int32]*load{}
			for _, b := range md.Brokers {
				byBroker[b.NodeID] = &load{}
			}
			for _, t := range md.Topics {
				led := map[int32]bool{}
				for _, p := range t.Partitions {
					if l := byBroker[p.Leader]; l != nil {
						l.leaders++
						if !led[p.Leader] {
							led[p.Leader] = true
							l.leaderTopics++
						}
					}
					for _, r := range p.Replicas {
						if l := byBroker[r]; l != nil {
							l.replicas++
						}
					}
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cluster %s, controller %d, %d brokers, %d topics\n", md.Cluster, md.Controller, len(md.Brokers), len(md.Topics))
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tADDRESS\tRACK\tCONTROLLER\tTOPICS LED\tLEADERS\tREPLICAS")
			for _, b := range md.Brokers {
				rack := "-"
				if b.Rack != nil {
					rack = *b.Rack
				}
				controller := ""
				if b.NodeID == md.Controller {
					controller = "yes"
				}
				l := byBroker[b.NodeID]
				fmt.Fprintf(w, "%d\t%s:%d\t%s\t%s\t%d\t%d\t%d\n", b.NodeID, b.Host, b.Port, rack, controller, l.leaderTopics, l.leaders, l.replicas)
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(describe)
	return cmd
}
