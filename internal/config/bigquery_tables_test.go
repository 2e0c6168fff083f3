package config

import (
	"strings"
	"testing"
	"time"
)

func TestBigQueryTableSpecAndErrorTableParse(t *testing.T) {
	yaml := strings.Replace(bigQueryPipeline, "create_tables: true,", `create_tables: true,
             time_partitioning: {field: at, type: hour, expiration: 720h}, clustering: [customer, id],
             require_partition_filter: true, description: "from Kafka", labels: {team: payments},`, 1) +
		"dlq: {bigquery: {}}\n"
	f, err := Parse([]byte(yaml), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	b := p.Sink.BigQuery
	if tp := b.TimePartitioning; tp == nil || tp.Field != "at" || tp.Type != "HOUR" || tp.Expiration != 720*time.Hour {
		t.Fatalf("time_partitioning = %+v", tp)
	}
	if strings.Join(b.Clustering, ",") != "customer,id" || !b.RequirePartitionFilter || b.Labels["team"] != "payments" || b.Description != "from Kafka" {
		t.Fatalf("parsed %+v", b)
	}
	if p.DLQ.BigQuery == nil || p.DLQ.BigQuery.Table != "{{.Table}}_error_records" {
		t.Fatalf("dlq.bigquery = %+v, want the default table template", p.DLQ.BigQuery)
	}
}

func TestBigQueryTableSpecProblemsAreReported(t *testing.T) {
	yaml := strings.Replace(bigQueryPipeline, "create_tables: true,", `create_tables: true,
             time_partitioning: {field: "a.b", type: WEEK, expiration: -1h}, clustering: [a, b, c, d, a],
             labels: {Team: x, ok: "Bad Value"},`, 1) +
		"dlq: {bigquery: {table: \"{{.Topic}}_errors\"}}\n"
	_, err := Parse([]byte(yaml), noEnv)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`sink.bigquery.time_partitioning.type: "WEEK" is not one of HOUR, DAY, MONTH, YEAR`,
		`sink.bigquery.time_partitioning.field: "a.b" is not a column name`,
		"sink.bigquery.time_partitioning.expiration: must not be negative",
		"sink.bigquery.clustering: lists 5 columns; BigQuery clusters by at most 4",
		`sink.bigquery.clustering[4]: "a" is listed twice`,
		"sink.bigquery.labels.Team: a label key is",
		`sink.bigquery.labels.ok: "Bad Value": a label value is`,
		"dlq.bigquery.table: bad template: only {{.Table}} may be used",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}
