package demo

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/internal/devstack"
)

// Addrs are the services the demo's pipeline file points at.
type Addrs struct {
	Brokers      []string
	RegistryURL  string // http://host:port
	BigQueryGRPC string // host:port
	BigQueryREST string // host:port
	PubSub       string // host:port
	Admin        string // host:port of the admin API of `sluice run`
}

// The dev stack's defaults (see `sluice dev --help`); a demo on other
// ports prints the flags that move `sluice dev` there too.
const (
	defaultKafka        = "127.0.0.1:9092"
	defaultRegistry     = "http://127.0.0.1:8081"
	defaultBigQueryREST = "127.0.0.1:9050"
	defaultBigQueryGRPC = "127.0.0.1:9060"
	defaultPubSub       = "127.0.0.1:8085"
	defaultAdmin        = "127.0.0.1:8080"
)

// kafkaTopics are the Kafka topics the demo's pipelines read and write
// (dead-letter topics are created on first use).
var kafkaTopics = []string{eventsTopic, purchasesTopic, copyTopic, alertsKafkaTopic}

// pipelinesYAML is the demo's pipeline file; it is written to OutDir so a
// user can read it and run it again with `sluice dev` and `sluice run`
// (%[7]s: the header saying how; %[8]s: the admin address).
const pipelinesYAML = `# Written by sluice demo.%[7]s
admin: {listen: "%[8]s"}             # dashboard and API for sluice run; sluice status asks it
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

// WriteFiles writes the demo's pipeline file (pipelines.yaml) into
// outDir, prepares its SQLite database afresh, removes the previous
// events.jsonl, and returns the file's path and text.
func WriteFiles(ctx context.Context, outDir string, a Addrs) (string, string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", "", fmt.Errorf("creating demo output directory: %w", err)
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return "", "", err
	}
	path := filepath.Join(outDir, "pipelines.yaml")
	text := pipelineText(abs, path, a)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", "", fmt.Errorf("writing demo pipeline file: %w", err)
	}
	_ = os.Remove(filepath.Join(abs, "events.jsonl"))
	if err := prepareShopDB(ctx, filepath.Join(abs, "shop.db")); err != nil {
		return "", "", err
	}
	return path, text, nil
}

// pipelineText is the demo's pipeline file for the services at a, with
// its output under dir (absolute) and path where it is written.
func pipelineText(dir, path string, a Addrs) string {
	var header strings.Builder
	header.WriteString(" Run it yourself (sluice demo prints every step at its end):\n")
	for _, c := range []string{devCommand(a), runCommand(path, a)} {
		header.WriteString("#   " + c + "\n")
	}
	return fmt.Sprintf(pipelinesYAML, dir, a.Brokers[0], a.RegistryURL, a.BigQueryGRPC, a.BigQueryREST, a.PubSub,
		strings.TrimSuffix(header.String(), "\n"), a.Admin)
}

// PipelineFile is the demo's pipeline file for stack, writing its file
// and SQLite output under outDir, with the admin API on its default
// address.
func PipelineFile(outDir string, stack *devstack.Stack) string {
	return pipelineText(outDir, filepath.Join(outDir, "pipelines.yaml"), addrsOf(stack, defaultAdmin))
}

// addrsOf are the addresses of stack's services.
func addrsOf(stack *devstack.Stack, admin string) Addrs {
	return Addrs{Brokers: stack.Brokers, RegistryURL: stack.RegistryURL, BigQueryGRPC: stack.BigQueryAddrs.GRPC,
		BigQueryREST: stack.BigQueryAddrs.REST, PubSub: stack.PubSubAddr, Admin: admin}
}

// devCommand starts a `sluice dev` the file can run against: on the
// demo's ports, with the Pub/Sub subscription the file reads, and Kafka
// topics created on first use.
func devCommand(a Addrs) string {
	args := []string{"sluice dev --auto-create-topics", "--pubsub-subscription " + alertsSubscription + ":" + alertsTopic}
	if len(a.Brokers) > 0 && a.Brokers[0] != defaultKafka {
		args = append(args, "--kafka-port "+port(a.Brokers[0]))
	}
	if a.RegistryURL != defaultRegistry {
		args = append(args, "--registry-port "+port(strings.TrimPrefix(a.RegistryURL, "http://")))
	}
	if a.BigQueryREST != defaultBigQueryREST {
		args = append(args, "--bigquery-rest-port "+port(a.BigQueryREST))
	}
	if a.BigQueryGRPC != defaultBigQueryGRPC {
		args = append(args, "--bigquery-grpc-port "+port(a.BigQueryGRPC))
	}
	if a.PubSub != defaultPubSub {
		args = append(args, "--pubsub-port "+port(a.PubSub))
	}
	return strings.Join(args, " ")
}

func runCommand(path string, _ Addrs) string { return "sluice run " + path }

// RunCommands are the exact commands, with a word on each, that run the
// demo's pipeline file without the demo: `sluice dev` creating what the
// file needs, `sluice run`, something to read, and where to watch.
func RunCommands(path string, a Addrs) []string {
	brokers := ""
	if len(a.Brokers) > 0 && a.Brokers[0] != defaultKafka {
		brokers = " --brokers " + strings.Join(a.Brokers, ",")
	}
	emulator := ""
	if a.PubSub != defaultPubSub {
		emulator = " --emulator-host " + a.PubSub
	}
	status := "sluice status"
	if a.Admin != defaultAdmin {
		status += " --admin " + a.Admin
	}
	lines := []string{
		"# terminal 1: the embedded stack, with the Pub/Sub subscription the file reads",
		devCommand(a),
		"# terminal 2: the demo's five pipelines",
		runCommand(path, a),
		"# terminal 3: events for them to move, an alert, and their status",
		"sluice loadtest --topic " + eventsTopic + " --format json --rate 1000 --records 5000" + brokers,
		"sluice pubsub publish " + alertsTopic + " --ordering-key sensor-7 '{\"device\":\"sensor-7\",\"severity\":\"critical\"}'" + emulator,
		status + "   # or the dashboard: http://" + a.Admin + "/",
		"# without --auto-create-topics, create the Kafka topics before sluice run:",
	}
	for _, t := range kafkaTopics {
		lines = append(lines, "sluice topics create "+t+" --partitions 6"+brokers)
	}
	return lines
}

func port(hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return p
}
