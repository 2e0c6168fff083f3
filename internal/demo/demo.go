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
	// Admin is the admin address written into the pipeline file for
	// `sluice run` (default 127.0.0.1:8080); the CLI serves the demo's own
	// admin API there too.
	Admin string
	// OnReady is called with the built pipelines once they run (the CLI
	// starts the admin API here).
	OnReady func(ctx context.Context, g *errgroup.Group, built []*assembly.Built) error
}

const (
	eventsTopic    = "demo.events"
	purchasesTopic = "demo.purchases"
	copyTopic      = "demo.events.copy"
)

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
	if o.Admin == "" {
		o.Admin = defaultAdmin
	}
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
	addrs := addrsOf(stack, o.Admin)
	pipelinesFile, fileText, err := WriteFiles(ctx, o.OutDir, addrs)
	if err != nil {
		return err
	}
	outDir, _ := filepath.Abs(o.OutDir)
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
	if o.Stack.DataDir == "" {
		// The offsets orders-to-sqlite kept in shop.db point into a broker
		// that is gone; against a new one they would skip its records.
		if ferr := forgetOffsets(context.WithoutCancel(ctx), filepath.Join(outDir, "shop.db")); ferr != nil {
			o.Logger.Warn("clearing the demo's stored offsets", "err", ferr)
		}
	}
	fmt.Fprintf(o.Out, "\nRun %s yourself, without the demo:\n", pipelinesFile)
	for _, l := range RunCommands(pipelinesFile, addrs) {
		fmt.Fprintln(o.Out, "  "+l)
	}
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
