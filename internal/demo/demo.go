package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

// Options configure the demo.
type Options struct {
	Stack    devstack.Options
	OutDir   string        // where pipeline files and sink output go
	Rate     int           // events per second
	Duration time.Duration // 0: until ctx is done
	Out      io.Writer     // summary lines
	Logger   *slog.Logger
	// Interactive rewrites the summary line in place (a terminal).
	Interactive bool
	// OnReady is called with the built pipelines once they run (the CLI
	// starts the admin API here).
	OnReady func(ctx context.Context, g *errgroup.Group, built []*assembly.Built) error
}

const (
	eventsTopic    = "demo.events"
	purchasesTopic = "demo.purchases"
	copyTopic      = "demo.events.copy"
)

// pipelinesYAML is the demo's pipeline file; it is written to OutDir so a
// user can read it and run it again with `sluice run`.
const pipelinesYAML = `# Written by sluice demo. Run again against sluice dev --auto-create-topics (the
# sinks' topics are created on first use) with: sluice run %[1]s/pipelines.yaml
pipelines:
  - name: events-to-kafka
    source:
      kafka:
        brokers: [%[2]s]
        topics: [demo.events]
        group: demo-events-to-kafka
        consumers: 2
        properties: {max.poll.records: 5000, fetch.max.wait.ms: 200}
    format: {value: json}
    delivery: exactly_once         # a Kafka transaction per batch, with its offsets
    on_error: dlq
    sink:
      kafka: {brokers: [%[2]s], topic: "{{.Topic}}.copy", compression: lz4}
  - name: events-to-file
    source:
      kafka:
        brokers: [%[2]s]
        topics: [demo.events]
        group: demo-events-to-file
    format: {value: json}
    on_error: skip
    sink:
      file: {path: %[1]s/events.jsonl}
  - name: orders-to-sqlite
    source:
      kafka:
        brokers: [%[2]s]
        topics: [demo.events]
        group: demo-orders-to-sqlite
    format: {value: json}
    delivery: exactly_once         # offsets live in the database, with the rows
    on_error: dlq
    sink:
      sqlite:
        path: %[1]s/shop.db
        staging_table: events_staging
        merge:
          mode: pause              # consumers stop while the merge runs
          every_records: 2000
          idle: 3s                 # the topic went quiet: merge what is there
          max_interval: 10s
          statements:
            - >-
              INSERT INTO orders (id, user_id, product, amount, occurred_at)
              SELECT id, user_id, product, amount, occurred_at FROM events_staging
              WHERE _sluice_batch <= {{.HighWaterMark}} AND kind = 'order'
              ON CONFLICT(id) DO UPDATE SET amount = excluded.amount
            - >-
              INSERT INTO page_views_per_page (page, views)
              SELECT page, count(*) FROM events_staging
              WHERE _sluice_batch <= {{.HighWaterMark}} AND kind = 'page_view' GROUP BY page
              ON CONFLICT(page) DO UPDATE SET views = views + excluded.views
            - DELETE FROM events_staging WHERE _sluice_batch <= {{.HighWaterMark}}
  - name: purchases-to-bigquery
    source:
      kafka:
        brokers: [%[2]s]
        topics: [demo.purchases]
        group: demo-purchases-to-bigquery
    format: {value: avro-confluent, schema_registry: {url: "%[3]s"}}
    on_error: dlq
    sink:
      bigquery:
        project: demo
        dataset: kafka
        table: "kafka-{{.Value.event_type}}"   # one table per event type
        create_dataset: true
        create_tables: true
        max_connections: 2                     # whatever the number of tables
        endpoint: %[4]s
        rest_endpoint: http://%[5]s
  - name: alerts-from-pubsub
    source:
      pubsub:
        project: demo
        subscription: alerts-sluice
        emulator_host: %[6]s
        key_from: ordering_key                 # the device: one partition per device
        streams: 8
    sink:
      kafka: {brokers: [%[2]s], topic: "demo.{{.Topic}}"}   # acked to Pub/Sub once Kafka has it
`

// PipelineFile is the demo's pipeline file for stack, writing its file
// and SQLite output under outDir.
func PipelineFile(outDir string, stack *devstack.Stack) string {
	return fmt.Sprintf(pipelinesYAML, outDir, stack.Brokers[0], stack.RegistryURL, stack.BigQueryAddrs.GRPC, stack.BigQueryAddrs.REST, stack.PubSubAddr)
}

// Run starts the stack, the generator and the pipelines, and prints a
// summary every second until ctx is done or Duration passes.
func Run(ctx context.Context, o Options) error {
	if o.Rate <= 0 {
		o.Rate = 2000
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return fmt.Errorf("creating demo output directory: %w", err)
	}
	outDir, _ := filepath.Abs(o.OutDir)
	stack, err := devstack.Start(ctx, o.Stack)
	if err != nil {
		return err
	}
	defer stack.Close()
	brokers := stack.Brokers
	fmt.Fprintf(o.Out, "Sluice demo: embedded Kafka broker on %s\n", strings.Join(brokers, ","))
	for _, e := range stack.Endpoints() {
		fmt.Fprintf(o.Out, "  %-16s %s\n", e.Name, e.Addr)
	}
	if err := createTopics(ctx, brokers, eventsTopic, copyTopic, purchasesTopic, alertsKafkaTopic); err != nil {
		return err
	}
	alertRate := max(1, o.Rate/20)
	alerts, err := NewAlertPublisher(ctx, stack.PubSubAddr, alertRate)
	if err != nil {
		return err
	}
	fileText := PipelineFile(outDir, stack)
	pipelinesFile := filepath.Join(outDir, "pipelines.yaml")
	if err := os.WriteFile(pipelinesFile, []byte(fileText), 0o644); err != nil {
		return fmt.Errorf("writing demo pipeline file: %w", err)
	}
	_ = os.Remove(filepath.Join(outDir, "events.jsonl"))
	if err := prepareShopDB(ctx, filepath.Join(outDir, "shop.db")); err != nil {
		return err
	}
	f, err := config.Parse([]byte(fileText), os.LookupEnv)
	if err != nil {
		return fmt.Errorf("demo pipeline file: %w", err)
	}
	var built []*assembly.Built
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, b := range built {
			_ = b.Close(closeCtx)
		}
	}()
	for _, p := range f.Pipelines {
		b, err := assembly.Build(ctx, p, o.Logger)
		if err != nil {
			return err
		}
		built = append(built, b)
	}
	gen, err := NewGenerator(brokers, eventsTopic, o.Rate)
	if err != nil {
		return err
	}
	purchases, err := NewPurchaseGenerator(brokers, stack.RegistryURL, purchasesTopic, max(1, o.Rate/10))
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Generating %d events/s into %s; pipelines from %s:\n", o.Rate, eventsTopic, pipelinesFile)
	fmt.Fprintf(o.Out, "  events-to-kafka  %s -> %s (2 consumers, exactly once: Kafka transactions)\n", eventsTopic, copyTopic)
	fmt.Fprintf(o.Out, "  events-to-file   %s -> %s\n", eventsTopic, filepath.Join(outDir, "events.jsonl"))
	fmt.Fprintf(o.Out, "  orders-to-sqlite %s -> %s (staging, merged every 2000 records or 3 s idle)\n", eventsTopic, filepath.Join(outDir, "shop.db"))
	fmt.Fprintf(o.Out, "  purchases-to-bigquery %s (Avro, %d/s, %d event types) -> BigQuery emulator, a table per type, 2 connections\n", purchasesTopic, max(1, o.Rate/10), len(eventTypes))
	fmt.Fprintf(o.Out, "  alerts-from-pubsub Pub/Sub %s (%d/s, ordering key = device) -> %s\n", alertsTopic, alertRate, alertsKafkaTopic)

	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return gen.Run(gctx) })
	g.Go(func() error { return purchases.Run(gctx) })
	g.Go(func() error { return alerts.Run(gctx) })
	for _, b := range built {
		g.Go(func() error { return b.Pipeline.Run(gctx) })
	}
	if o.OnReady != nil {
		if err := o.OnReady(gctx, g, built); err != nil {
			stopAll() // the pipelines already run: drain them before returning
			_ = g.Wait()
			return err
		}
	}
	if o.Duration > 0 {
		fmt.Fprintf(o.Out, "Running for %s (Ctrl-C stops earlier).\n", o.Duration)
	} else {
		fmt.Fprintln(o.Out, "Press Ctrl-C to stop.")
	}
	g.Go(func() error { return summarize(gctx, o, gen, stack, built) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	fmt.Fprintln(o.Out)
	for _, b := range built {
		st := b.Pipeline.Status()
		merged := ""
		if m, ok := b.Sink.(connector.Merger); ok {
			merged = fmt.Sprintf(", merges %d", len(m.Merges()))
		}
		fmt.Fprintf(o.Out, "%-16s read %d, wrote %d, dead-lettered %d, skipped %d%s (%s)\n", st.Name, st.RecordsIn, st.RecordsOut, st.DeadLettered, st.Skipped, merged, st.State)
	}
	bq := stack.BigQuery.Stats()
	fmt.Fprintf(o.Out, "BigQuery emulator: %d tables, %d rows, peak %d connections and %d AppendRows streams\n",
		len(bq.RowsByTable), bq.RowsAppended, bq.PeakConnections, bq.PeakStreams)
	fmt.Fprintf(o.Out, "Generated %d events, %d purchases and %d Pub/Sub alerts. Output and pipeline file in %s\n", gen.Produced(), purchases.Produced(), alerts.Published(), outDir)
	return err
}

func createTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, 6, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating demo topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}
