package config

import (
	"strings"
	"testing"
	"time"
)

const bigQueryEOSPipeline = `
name: orders
source:
  kafka: {brokers: [localhost:9092], topics: [orders], group: orders-bq, consumers: 3}
format: {value: json}
delivery: exactly_once
sink:
  bigquery: {project: demo, dataset: kafka, table: "{{.Value.kind}}"%s}
`

// The CreateWriteStream quota (10,000 per hour, per project and region)
// against tables x consumers x batches per hour.
func TestBigQueryExactlyOnceQuotaArithmetic(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(bigQueryEOSPipeline, "%s", "", 1)), noEnv)
	want := "sink.bigquery.commit_interval: delivery: exactly_once would create about 21600 write streams per hour " +
		"(20 tables x 3 consumers x 360 batches per hour at a 10s batch.linger), over BigQuery's quota of 10000 " +
		"CreateWriteStream calls per hour per project and region; set commit_interval (and batch.linger) to 22s or more, " +
		"or use delivery: at_least_once"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant it to contain %q", err, want)
	}

	f, err := Parse([]byte(strings.Replace(bigQueryEOSPipeline, "%s", ", commit_interval: 30s, expected_tables: 5", 1)), noEnv)
	if err != nil {
		t.Fatalf("5 tables x 3 consumers x 120 batches per hour is within the quota: %v", err)
	}
	p := f.Pipelines[0]
	if p.Batch.Linger != 30*time.Second || p.Sink.BigQuery.CommitInterval != 30*time.Second {
		t.Fatalf("batch.linger %s, commit_interval %s; want both 30s", p.Batch.Linger, p.Sink.BigQuery.CommitInterval)
	}
	if _, err := Parse([]byte(strings.Replace(strings.Replace(bigQueryEOSPipeline, "%s", ", commit_interval: -1s", 1), "consumers: 3", "consumers: 1", 1)), noEnv); err == nil ||
		!strings.Contains(err.Error(), "sink.bigquery.commit_interval: must be a positive duration") {
		t.Fatalf("negative commit_interval: %v", err)
	}
}
