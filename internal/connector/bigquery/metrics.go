package bigquery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/metrics"
)

// BigQuery-specific metrics, registered on Sluice's registry. Labels are
// bounded: pipeline, a result or status code, the project.
var (
	appendsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_appends_total",
		Help: "AppendRows requests by result: ok, retry (transient failure, sent again), row_errors (some rows refused, the others sent again), rejected (every row refused).",
	}, []string{"pipeline", "result"})
	appendRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_append_retries_total",
		Help: "Appends retried after a transient failure, by gRPC status code (ResourceExhausted, Unavailable, DeadlineExceeded, ...).",
	}, []string{"pipeline", "code"})
	rowsAppended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_rows_appended_total",
		Help: "Rows BigQuery confirmed appended.",
	}, []string{"pipeline"})
	rowsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_rows_rejected_total",
		Help: "Rows sent to on_error: refused by BigQuery (row errors) or not encodable for their table.",
	}, []string{"pipeline"})
	possibleDuplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_possible_duplicate_rows_total",
		Help: "Rows appended again after an append whose outcome was unknown (deadline passed, connection lost after sending): each may be in the table twice.",
	}, []string{"pipeline"})
	appendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_bigquery_append_seconds",
		Help:    "Time from sending an append to its result.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
	}, []string{"pipeline"})
	openWriters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_bigquery_writers",
		Help: "Tables with an open writer (multiplexed over the connections; not connections themselves).",
	}, []string{"pipeline"})
	schemaChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_bigquery_table_changes_total",
		Help: "Tables created and schemas evolved (columns added), by kind: create, add_columns.",
	}, []string{"pipeline", "kind"})
	streamLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_bigquery_connection_limit",
		Help: "The bound in force on Storage Write connections (AppendRows streams) per client: max_connections, lowered when BigQuery refuses a connection for quota.",
	}, []string{"project"})
)

func init() {
	metrics.Registry.MustRegister(appendsTotal, appendRetries, rowsAppended, rowsRejected,
		possibleDuplicates, appendSeconds, openWriters, schemaChanges, streamLimit)
}
