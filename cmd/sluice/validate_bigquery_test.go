package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `sluice validate` refuses an exactly-once BigQuery pipeline whose
// CreateWriteStream calls per hour would exceed BigQuery's quota, and says
// the arithmetic.
func TestValidateRefusesBigQueryExactlyOnceOverTheStreamQuota(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(file, []byte(`
name: orders
source:
  kafka: {brokers: [127.0.0.1:1], topics: [orders], group: g, consumers: 2}
format: {value: json}
delivery: exactly_once
sink:
  bigquery: {project: demo, dataset: kafka, table: "{{.Value.kind}}", expected_tables: 50, commit_interval: 5s}
`), 0o644)
	_, errOut, err := runCLI(t, "validate", file)
	want := "sink.bigquery.commit_interval: delivery: exactly_once would create about 72000 write streams per hour " +
		"(50 tables x 2 consumers x 720 batches per hour at a 5s batch.linger), over BigQuery's quota of 10000"
	if err == nil || !strings.Contains(errOut, want) || !strings.Contains(errOut, "to 36s or more") {
		t.Fatalf("validate: %v\n%s\nwant it to contain %q and 36s", err, errOut, want)
	}
}
