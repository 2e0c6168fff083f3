package config

import (
	"strings"
	"testing"
	"time"
)

const bigQueryPipeline = `
name: purchases
source:
  kafka: {brokers: [localhost:9092], topics: [purchases], group: purchases-bq}
format: {value: json}
on_error: dlq
sink:
  bigquery: {project: demo, dataset: kafka, table: "kafka-{{.Topic}}",
             create_tables: true, create_dataset: true, max_connections: 4,
             endpoint: 127.0.0.1:9060, rest_endpoint: http://127.0.0.1:9050}
`

func TestBigQuerySinkParsesWithDefaults(t *testing.T) {
	f, err := Parse([]byte(bigQueryPipeline), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := f.Pipelines[0].Sink.BigQuery
	if b == nil {
		t.Fatal("sink.bigquery not parsed")
	}
	if b.Project != "demo" || b.Dataset != "kafka" || b.Table != "kafka-{{.Topic}}" || !b.CreateTables || !b.CreateDataset {
		t.Fatalf("parsed %+v", b)
	}
	if b.MaxConnections != 4 || b.MaxInFlightAppends != 64 || b.AppendTimeout != 30*time.Second ||
		b.IdleTimeout != 5*time.Minute || b.Location != "US" || len(b.Metadata) != 0 {
		t.Fatalf("defaults not applied: %+v", b)
	}
	if !b.Plaintext() {
		t.Fatal("a loopback emulator endpoint is not spoken to in plaintext")
	}
	google := BigQuerySink{Endpoint: "bigquerystorage.googleapis.com:443", RESTEndpoint: "https://bigquery.googleapis.com"}
	if google.Plaintext() || (&BigQuerySink{}).Plaintext() {
		t.Fatal("Google's endpoints would be spoken to without TLS")
	}
}

func TestBigQuerySinkProblemsAreReportedWithTheirPaths(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing and bad values", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
sink:
  bigquery: {dataset: "my-dataset", table: "t-{{.Topic", max_connections: 0, max_in_flight_appends: -1,
             append_timeout: -1s, metadata: [topic, offset, topic, headers], endpoint: "127.0.0.1:9060"}
`, []string{
			"sink.bigquery.project: is required",
			`sink.bigquery.dataset: "my-dataset" is not a dataset name`,
			"sink.bigquery.table: bad template",
			"sink.bigquery.max_in_flight_appends: must be between 1 and 10000",
			"sink.bigquery.append_timeout: must be a positive duration",
			`sink.bigquery.metadata[2]: "topic" is listed twice`,
			`sink.bigquery.metadata[3]: "headers" is not one of topic, partition, offset, timestamp, key`,
			"sink.bigquery.endpoint: endpoint (gRPC) and rest_endpoint go together",
		}},
		{"raw values and exactly-once", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
delivery: exactly_once
sink:
  bigquery: {project: p, dataset: d, table: t, max_connections: 1000}
`, []string{
			`sink.bigquery: writes decoded fields: format.value must be json or avro-confluent, not "raw"`,
			"sink.bigquery.max_connections: must be between 1 and 100",
		}},
		{"unknown key and a second sink", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: avro-confluent, schema_registry: {url: "http://r:8081"}}
sink:
  file: {path: out.jsonl}
  bigquery: {project: p, dataset: d, table: t, max_conections: 2}
`, []string{
			"sink.bigquery.max_conections: unknown key",
			"sink: exactly one sink is needed (kafka, file, postgres, mysql, sqlite, bigquery, pubsub); found 2: file, bigquery",
		}},
		{"credentials with an emulator", `
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
sink:
  bigquery: {project: p, dataset: d, table: t, endpoint: "localhost:9060", rest_endpoint: "localhost:9050", credentials_file: sa.json}
`, []string{
			`sink.bigquery.rest_endpoint: "localhost:9050" is not an http:// or https:// URL`,
			"sink.bigquery.credentials_file: is not used with an emulator endpoint",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
