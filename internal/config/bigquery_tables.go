package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// BigQueryTimePartitioning partitions the tables a bigquery sink creates:
//
//	time_partitioning: {field: created_at, type: DAY, expiration: 2160h}
type BigQueryTimePartitioning struct {
	// Field is a top-level TIMESTAMP, DATE or DATETIME column (a metadata
	// column such as _sluice_timestamp too). Default none: partitioned by
	// ingestion time (_PARTITIONTIME).
	Field string `yaml:"field" doc:"A top-level TIMESTAMP, DATE or DATETIME column (or a metadata column such as _sluice_timestamp); default none: ingestion time." example:"created_at"`
	// Type is the partition granularity: HOUR, DAY, MONTH or YEAR.
	// Default DAY.
	Type string `yaml:"type" default:"DAY" enum:"HOUR|DAY|MONTH|YEAR" doc:"Partition granularity."`
	// Expiration deletes a partition this long after its time. Default
	// none: partitions are kept.
	Expiration time.Duration `yaml:"expiration" doc:"Deletes a partition this long after its time; default none: partitions are kept." example:"2160h"`
}

// BigQueryDLQ writes bad records as rows of an error table, as Dataflow's
// Kafka to BigQuery template does:
//
//	on_error: dlq
//	dlq: {bigquery: {table: "{{.Table}}_error_records"}}
type BigQueryDLQ struct {
	// Table names the error table, a template over {{.Table}}: the table
	// the record was meant for (or the pipeline's name when that cannot
	// be rendered). It is created in the sink's dataset when missing.
	// Default "{{.Table}}_error_records".
	Table string `yaml:"table" default:"{{.Table}}_error_records" doc:"The error table, a template over {{.Table}} (the table the record was meant for); created in the sink's dataset when missing."`
}

// bigQueryMaxClustering is BigQuery's limit on clustering columns.
const bigQueryMaxClustering = 4

var (
	bigQueryColumn     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,299}$`)
	bigQueryLabelKey   = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	bigQueryLabelValue = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
)

func (b *BigQuerySink) applyTableSpecDefaults() {
	if tp := b.TimePartitioning; tp != nil {
		tp.Type = strings.ToUpper(tp.Type) // the DAY default comes from its tag
	}
}

func (b *BigQuerySink) validateTableSpec(v *validator) {
	if tp := b.TimePartitioning; tp != nil {
		if tp.Field != "" && !bigQueryColumn.MatchString(tp.Field) {
			v.add("time_partitioning.field", fmt.Sprintf("%q is not a column name", tp.Field))
		}
		if tp.Expiration < 0 {
			v.add("time_partitioning.expiration", "must not be negative")
		}
	}
	if b.RequirePartitionFilter && b.TimePartitioning == nil {
		v.add("require_partition_filter", "needs time_partitioning (a table without partitions has no partition filter)")
	}
	if len(b.Clustering) > bigQueryMaxClustering {
		v.add("clustering", fmt.Sprintf("lists %d columns; BigQuery clusters by at most %d", len(b.Clustering), bigQueryMaxClustering))
	}
	seen := map[string]bool{}
	for i, c := range b.Clustering {
		field := fmt.Sprintf("clustering[%d]", i)
		if !bigQueryColumn.MatchString(c) {
			v.add(field, fmt.Sprintf("%q is not a top-level column name", c))
		}
		if seen[strings.ToLower(c)] {
			v.add(field, fmt.Sprintf("%q is listed twice", c))
		}
		seen[strings.ToLower(c)] = true
	}
	if len(b.Labels) > 64 {
		v.add("labels", fmt.Sprintf("has %d labels; BigQuery allows 64", len(b.Labels)))
	}
	for k, val := range b.Labels {
		if !bigQueryLabelKey.MatchString(k) {
			v.add("labels."+k, "a label key is 1-63 lower-case letters, digits, '_' or '-', starting with a letter")
		}
		if !bigQueryLabelValue.MatchString(val) {
			v.add("labels."+k, fmt.Sprintf("%q: a label value is at most 63 lower-case letters, digits, '_' or '-'", val))
		}
	}
}

// BigQueryDLQTemplate parses a dlq.bigquery.table template.
func BigQueryDLQTemplate(text string) (*template.Template, error) {
	t, err := template.New("dlq.bigquery.table").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(&bytes.Buffer{}, struct{ Table string }{"t"}); err != nil {
		return nil, fmt.Errorf("only {{.Table}} may be used: %w", err)
	}
	return t, nil
}

func (p *Pipeline) validateBigQueryDLQ(v *validator) {
	d := p.DLQ.BigQuery
	if p.Sink.BigQuery == nil {
		v.add("dlq.bigquery", "writes to the bigquery sink's dataset: it needs sink.bigquery")
	}
	if p.OnError != OnErrorDLQ {
		v.add("dlq.bigquery", fmt.Sprintf("is used with on_error: dlq, not %q", p.OnError))
	}
	if _, err := BigQueryDLQTemplate(d.Table); err != nil {
		v.add("dlq.bigquery.table", fmt.Sprintf("bad template: %v", err))
	}
}
