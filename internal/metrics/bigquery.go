package metrics

import "github.com/prometheus/client_golang/prometheus"

// The BigQuery sink's metrics, registered on Sluice's registry. Labels are
// bounded: pipeline, a result or status code, the project.
var (
	BigQueryAppends = counterVec("sluice_bigquery_appends_total",
		"AppendRows requests by result: ok, retry (transient failure, sent again), row_errors (some rows refused, the others sent again), rejected (every row refused).", "pipeline", "result")
	BigQueryAppendRetries = counterVec("sluice_bigquery_append_retries_total",
		"Appends retried after a transient failure, by gRPC status code (ResourceExhausted, Unavailable, DeadlineExceeded, ...).", "pipeline", "code")
	BigQueryRowsAppended = counterVec("sluice_bigquery_rows_appended_total",
		"Rows BigQuery confirmed appended.", "pipeline")
	BigQueryRowsRejected = counterVec("sluice_bigquery_rows_rejected_total",
		"Rows sent to on_error: refused by BigQuery (row errors) or not encodable for their table.", "pipeline")
	BigQueryPossibleDuplicates = counterVec("sluice_bigquery_possible_duplicate_rows_total",
		"Rows appended again after an append whose outcome was unknown (deadline passed, connection lost after sending): each may be in the table twice.", "pipeline")
	BigQueryAppendSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_bigquery_append_seconds",
		Help:    "Time from sending an append to its result.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
	}, []string{"pipeline"})
	BigQueryWriters = gaugeVec("sluice_bigquery_writers",
		"Tables with an open writer (multiplexed over the connections; not connections themselves).", "pipeline")
	BigQueryTableChanges = counterVec("sluice_bigquery_table_changes_total",
		"Tables created and schemas evolved (columns added), by kind: create, add_columns.", "pipeline", "kind")
	BigQueryConnectionLimit = gaugeVec("sluice_bigquery_connection_limit",
		"The bound in force on Storage Write connections (AppendRows streams) per client: max_connections, lowered when BigQuery refuses a connection for quota.", "project")
)

func init() {
	Registry.MustRegister(BigQueryAppends, BigQueryAppendRetries, BigQueryRowsAppended, BigQueryRowsRejected,
		BigQueryPossibleDuplicates, BigQueryAppendSeconds, BigQueryWriters, BigQueryTableChanges, BigQueryConnectionLimit)
}
