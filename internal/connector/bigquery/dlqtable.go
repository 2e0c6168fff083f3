package bigquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// DeadLetterTable is on_error: dlq into BigQuery: each bad record becomes a
// row of an error table in the sink's dataset (by default
// <table>_error_records, next to the table the record was meant for),
// created on first use. Its columns mirror the error tables of Dataflow's
// Kafka to BigQuery template (timestamp, payloadString, payloadBytes,
// attributes, errorMessage), with Kafka's coordinates beside them:
//
//	timestamp         TIMESTAMP  when the record was dead-lettered
//	payloadString     STRING     the raw value, when it is valid UTF-8
//	payloadBytes      BYTES      the raw value (base64 in the REST API)
//	attributes        REPEATED RECORD {key STRING, value STRING}: the headers
//	errorMessage      STRING     the full reason
//	errorReason       STRING     its short kind: json, schema, type, row, ...
//	topic, partition, offset     where the record was read (STRING, INT64, INT64)
//	key               BYTES      the raw key
//	recordTimestamp   TIMESTAMP  the record's own timestamp
//	pipeline          STRING
//	destinationTable  STRING     the table the record was meant for
//
// Rows are appended over the same shared client (and so the same
// max_connections) as the sink's.
type DeadLetterTable struct {
	sink     *Sink
	tableOf  *connector.NameTemplate // the sink's table template
	tmpl     *template.Template
	pipeline string
}

// errorTableSchema is the error table's schema (one value: its pointer is
// the coverage cache's key).
var errorTableSchema = &connector.Schema{Name: "sluice.ErrorRecord", Fields: []connector.Field{
	{Name: "timestamp", Type: connector.TypeTimestamp},
	{Name: "payloadString", Type: connector.TypeString, Nullable: true},
	{Name: "payloadBytes", Type: connector.TypeBytes, Nullable: true},
	{Name: "attributes", Type: connector.TypeArray, Items: &connector.Field{Type: connector.TypeRecord, Fields: []connector.Field{
		{Name: "key", Type: connector.TypeString}, {Name: "value", Type: connector.TypeString, Nullable: true}}}},
	{Name: "errorMessage", Type: connector.TypeString},
	{Name: "errorReason", Type: connector.TypeString},
	{Name: "topic", Type: connector.TypeString},
	{Name: "partition", Type: connector.TypeInt},
	{Name: "offset", Type: connector.TypeInt},
	{Name: "key", Type: connector.TypeBytes, Nullable: true},
	{Name: "recordTimestamp", Type: connector.TypeTimestamp, Nullable: true},
	{Name: "pipeline", Type: connector.TypeString},
	{Name: "destinationTable", Type: connector.TypeString, Nullable: true},
}}

// NewDeadLetterTable writes error rows to the tables table (a template
// over {{.Table}}) names, in the dataset of o.Config. Like New, it
// connects lazily.
func NewDeadLetterTable(ctx context.Context, o Options, table string) (*DeadLetterTable, error) {
	tmpl, err := config.BigQueryDLQTemplate(table)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("dlq.bigquery.table: %w", err))
	}
	tableOf, err := connector.ParseNameTemplate("sink.bigquery.table", o.Config.Table)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	cfg := o.Config
	// Error tables are plain: the sink's partitioning and clustering
	// name columns they do not have; their schema is fixed.
	cfg.Table = "error_records" // a constant: a table error stops the pipeline
	cfg.CreateTables = true
	cfg.Metadata = nil
	cfg.TimePartitioning, cfg.Clustering, cfg.RequirePartitionFilter = nil, nil, false
	cfg.Description = "Records the sluice pipeline " + o.Pipeline + " could not write"
	if o.Logger != nil {
		o.Logger = o.Logger.With("dlq", "bigquery")
	}
	s, err := New(ctx, Options{Config: cfg, Pipeline: o.Pipeline, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return &DeadLetterTable{sink: s, tableOf: tableOf, tmpl: tmpl, pipeline: o.Pipeline}, nil
}

// Send appends rec's error row and returns nil once BigQuery confirmed
// it. A row BigQuery refuses, or an error table that cannot be made, is a
// connector.Permanent error; transient failures are retried until ctx
// ends.
func (d *DeadLetterTable) Send(ctx context.Context, rec *connector.Record, reason error) error {
	dest, table, err := d.tables(rec)
	if err != nil {
		return connector.Permanent(err)
	}
	row := &connector.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Schema: errorTableSchema, Fields: d.errorRow(rec, reason, dest)}
	bad := &badRecords{s: d.sink}
	units, err := d.sink.prepare(ctx, table, []*connector.Record{row}, bad)
	if err != nil {
		return fmt.Errorf("writing to error table %s: %w", table, err)
	}
	for _, u := range units {
		if err := d.sink.appendUnit(ctx, u, bad); err != nil {
			return fmt.Errorf("writing to error table %s: %w", table, err)
		}
	}
	if len(bad.list) > 0 {
		return connector.Permanent(fmt.Errorf("error table %s refused the row of %s/%d@%d: %w", table, rec.Topic, rec.Partition, rec.Offset, bad.list[0]))
	}
	return nil
}

// tables returns the table rec was meant for ("" when its name cannot be
// rendered) and its error table.
func (d *DeadLetterTable) tables(rec *connector.Record) (dest, table string, err error) {
	base := d.pipeline
	if rendered, rerr := d.tableOf.Render(rec); rerr == nil {
		if name, nerr := tableName(rendered); nerr == nil {
			dest, base = name, name
		}
	}
	var b strings.Builder
	if err := d.tmpl.Execute(&b, struct{ Table string }{base}); err != nil {
		return "", "", fmt.Errorf("rendering dlq.bigquery.table for %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
	}
	table, err = tableName(b.String())
	if err != nil {
		return "", "", fmt.Errorf("dlq.bigquery.table: %w", err)
	}
	return dest, table, nil
}

func (d *DeadLetterTable) errorRow(rec *connector.Record, reason error, dest string) map[string]any {
	kind := "invalid"
	var re *connector.RecordError
	if errors.As(reason, &re) && re.Reason != "" {
		kind = re.Reason
	}
	row := map[string]any{
		"timestamp": time.Now(), "errorMessage": reason.Error(), "errorReason": kind,
		"topic": rec.Topic, "partition": int64(rec.Partition), "offset": rec.Offset, "pipeline": d.pipeline,
	}
	if rec.Value != nil {
		row["payloadBytes"] = rec.Value
		if utf8.Valid(rec.Value) {
			row["payloadString"] = string(rec.Value)
		}
	}
	if rec.Key != nil {
		row["key"] = rec.Key
	}
	if !rec.Timestamp.IsZero() {
		row["recordTimestamp"] = rec.Timestamp
	}
	if dest != "" {
		row["destinationTable"] = dest
	}
	if len(rec.Headers) > 0 {
		attrs := make([]any, len(rec.Headers))
		for i, h := range rec.Headers {
			attrs[i] = map[string]any{"key": h.Key, "value": strings.ToValidUTF8(string(h.Value), "\uFFFD")}
		}
		row["attributes"] = attrs
	}
	return row
}

// Close closes the error tables' writers.
func (d *DeadLetterTable) Close(ctx context.Context) error { return d.sink.Close(ctx) }
