package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/tail"
)

func newTailCommand() *cobra.Command {
	o := tail.Options{}
	var kf kafkaFlags
	var format string
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print a topic's records, decoded, like a console consumer",
		Long: `Tail prints a topic's records as they are written (or from --from),
one per line, with partition, offset, timestamp, key, headers and the value
decoded: Avro in Confluent's wire format through --registry-url, JSON as
it is, other text as text and binary as base64. It joins no consumer group
and commits nothing. It stops at Ctrl-C, after --max records, or with
--until-end at the end offsets as they were when it started (exit 0).`,
		Example: `  sluice tail orders
  sluice tail orders --from earliest --until-end --format json | jq .value
  sluice tail shop --partition 2 --from 1500 --max 10
  sluice tail shop --from 2026-12-03T14:00:00Z --registry-url http://127.0.0.1:8081`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "text" {
				return fmt.Errorf("--format %q: use json or text", format)
			}
			opts, err := kf.options()
			if err != nil {
				return err
			}
			o.Brokers, o.ClientOptions, o.Topic = kf.brokers, opts, args[0]
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			w := cmd.OutOrStdout()
			return tail.Read(ctx, o, func(m tail.Message) error {
				if format == "json" {
					b, err := json.Marshal(m)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(w, "%s\n", b)
					return err
				}
				return printText(w, m)
			})
		},
	}
	f := cmd.Flags()
	kf.register(f)
	f.StringVar(&o.From, "from", "latest", "where to start: earliest, latest, an offset, or an RFC 3339 time")
	f.Int32Var(&o.Partition, "partition", -1, "read only this partition (-1: all)")
	f.Int64Var(&o.Max, "max", 0, "stop after this many records (0: no limit)")
	f.BoolVar(&o.UntilEnd, "until-end", false, "stop at the end offsets as they were at the start")
	f.StringVar(&format, "format", "text", "json (one object per line) or text")
	f.StringVar(&o.RegistryURL, "registry-url", envOr("SLUICE_REGISTRY_URL", "http://127.0.0.1:8081"), "schema registry for Avro values in Confluent's wire format (env SLUICE_REGISTRY_URL; empty: show them as base64)")
	return cmd
}

func printText(w io.Writer, m tail.Message) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d %s", m.Partition, m.Offset, m.Timestamp.UTC().Format(time.RFC3339Nano))
	if m.Key != nil {
		fmt.Fprintf(&b, " key=%q", *m.Key)
	}
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, m.Headers[k])
	}
	switch {
	case m.Null:
		b.WriteString(" null")
	case m.Value != nil:
		b.WriteString(" " + string(m.Value))
	default:
		b.WriteString(" " + m.ValueText)
	}
	if m.DecodeError != "" {
		b.WriteString("  (not decoded: " + m.DecodeError + ")")
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}
