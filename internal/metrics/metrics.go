// Package metrics declares every Prometheus metric Sluice exports, in one
// place. Labels are bounded: pipeline, connector, topic, kind, never keys
// or offsets.
package metrics

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// Registry holds Sluice's metrics (and the Go runtime's); /metrics serves it.
var Registry = prometheus.NewRegistry()

var (
	RecordsIn = counterVec("sluice_records_in_total",
		"Records read from the source.", "pipeline")
	BytesIn = counterVec("sluice_bytes_in_total",
		"Key, value and header bytes read from the source.", "pipeline")
	RecordsOut = counterVec("sluice_records_out_total",
		"Records written durably to the sink.", "pipeline")
	BytesOut = counterVec("sluice_bytes_out_total",
		"Key, value and header bytes written durably to the sink.", "pipeline")
	RecordsDeadLettered = counterVec("sluice_records_dead_lettered_total",
		"Bad records sent to the dead-letter destination.", "pipeline", "reason")
	RecordsSkipped = counterVec("sluice_records_skipped_total",
		"Bad records skipped (on_error: skip).", "pipeline", "reason")
	RecordsFiltered = counterVec("sluice_records_filtered_total",
		"Records dropped by a transforms filter (acked, so their offsets commit).", "pipeline")
	Errors = counterVec("sluice_errors_total",
		"Errors by kind: decode, write, commit, retry.", "pipeline", "kind")
	Retries = counterVec("sluice_retries_total",
		"Transient failures retried with backoff.", "pipeline", "stage")
	BatchRecords = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_batch_records",
		Help:    "Records per sink write.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	}, []string{"pipeline"})
	WriteSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_write_seconds",
		Help:    "Time a sink write took until durable, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
	}, []string{"pipeline"})
	CommitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_commit_seconds",
		Help:    "Time an offset commit took.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"pipeline"})
	KafkaTransactions = counterVec("sluice_kafka_transactions_total",
		"Kafka transactions of exactly-once Kafka sinks, by how they ended: committed, or aborted (revoked partitions, a refused record, an error).",
		"pipeline", "result")
	InFlightRecords = gaugeVec("sluice_in_flight_records",
		"Records read but not yet acked.", "pipeline")
	InFlightBytes = gaugeVec("sluice_in_flight_bytes",
		"Bytes held by records read but not yet acked: their size as read plus, once decoded, an estimate of their decoded form.", "pipeline")
	ConsumerLag = gaugeVec("sluice_consumer_lag",
		"Records between the partition's end offset and the committed position.", "pipeline", "topic", "partition")
	ConsumerLagSeconds = gaugeVec("sluice_consumer_lag_seconds",
		"How long the oldest record not yet written has waited, by its timestamp.", "pipeline")
	WatermarkSeconds = gaugeVec("sluice_watermark_seconds",
		"The pipeline's watermark (Unix seconds): the minimum over active partitions of the largest event time made durable; idle partitions do not hold it back.", "pipeline")
	FreshnessSeconds = gaugeVec("sluice_freshness_seconds",
		"Now minus the watermark: how old the newest data is that the sink is known to hold for every active partition.", "pipeline")
	EndToEndLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_end_to_end_latency_seconds",
		Help:    "Per record, from its event time (timestamp policy) to durable in the sink.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 16),
	}, []string{"pipeline"})
	Consumers = gaugeVec("sluice_consumers",
		"Consumers (group members) running in this process.", "pipeline")
	PipelineState = gaugeVec("sluice_pipeline_state",
		"1 for the pipeline's current state, 0 for the others.", "pipeline", "state")
	SinkConnections = gaugeVec("sluice_sink_connections",
		"Connections the sink holds open: SQL connections, pooled and merge session (sampled every 5 s); "+
			"BigQuery AppendRows streams of the process's Storage Write client, which the bigquery pipelines with the same project and bounds share.",
		"pipeline", "sink")
	MergeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_merge_seconds",
		Help:    "Time a staging-to-final merge took, pausing and draining included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	}, []string{"pipeline"})
	Merges = counterVec("sluice_merges_total",
		"Merge attempts, by trigger (records, idle, max_interval, manual, recovery) and result (ok, error).", "pipeline", "trigger", "result")
	SourceUp = gaugeVec("sluice_source_up",
		"0 while the pipeline's source is unreachable (see status: source): every Kafka broker it needs fails to connect or to answer; the Pub/Sub server does not answer or refuses the subscription. 1 otherwise.", "pipeline")
	SourceErrors = counterVec("sluice_source_errors_total",
		"Failures of the source's client to reach its servers: connect (dial or connection setup; Pub/Sub: a streaming pull not opened, or broken before it was answered), request (sent but not answered) or refused (Pub/Sub: the server refused the subscription, e.g. deleted or permission denied).", "pipeline", "kind")
	AdminRequests = counterVec("sluice_admin_requests_total",
		"Admin API requests by route pattern and status code.", "route", "code")
)

// Kafka client metrics (franz-go's kprom plugin) are named sluice_kafka_*
// and labelled pipeline and client, plus the plugin's node_id and topic.
var (
	kafkaClientMetricsOff atomic.Bool
	kafkaClientsMu        sync.Mutex
	kafkaClients          = map[string]bool{} // live pipeline/client label pairs
)

// SetKafkaClientMetrics turns the export of Kafka client metrics on (the
// default) or off for clients created afterwards; benchmarks measure their
// cost with it.
func SetKafkaClientMetrics(on bool) { kafkaClientMetricsOff.Store(!on) }

// KafkaClientHooks returns the hooks that export one franz-go client's
// metrics (pass them to kgo.WithHooks). They register the client's
// collector when the client is created and unregister it when the client
// closes, so a re-created consumer does not leave stale series behind.
// Label pairs are unique among live clients: a taken client label gets a
// "#2", "#3", ... suffix.
func KafkaClientHooks(pipeline, client string) []kgo.Hook {
	if kafkaClientMetricsOff.Load() {
		return nil
	}
	kafkaClientsMu.Lock()
	name := client
	for i := 2; kafkaClients[pipeline+"\x00"+name]; i++ {
		name = fmt.Sprintf("%s#%d", client, i)
	}
	key := pipeline + "\x00" + name
	kafkaClients[key] = true
	kafkaClientsMu.Unlock()
	m := kprom.NewMetrics("sluice_kafka",
		kprom.Registry(nil), // collected through kafkaClientRegistration
		kprom.WithStaticLabel(prometheus.Labels{"pipeline": pipeline, "client": name}))
	return []kgo.Hook{m, &kafkaClientRegistration{m: m, key: key}}
}

// kafkaClientRegistration follows kprom's hooks (hooks run in order, so
// the plugin has created its collectors when OnNewClient runs here).
type kafkaClientRegistration struct {
	m   *kprom.Metrics
	key string
}

func (r *kafkaClientRegistration) OnNewClient(*kgo.Client) {
	// Label pairs are unique, so this cannot collide.
	_ = Registry.Register(r.m)
}

func (r *kafkaClientRegistration) OnClientClosed(*kgo.Client) {
	Registry.Unregister(r.m)
	kafkaClientsMu.Lock()
	delete(kafkaClients, r.key)
	kafkaClientsMu.Unlock()
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		RecordsIn, BytesIn, RecordsOut, BytesOut, RecordsDeadLettered, RecordsSkipped,
		RecordsFiltered,
		Errors, Retries, BatchRecords, WriteSeconds, CommitSeconds, KafkaTransactions,
		InFlightRecords, InFlightBytes, ConsumerLag, ConsumerLagSeconds, Consumers, PipelineState,
		SinkConnections, MergeSeconds, Merges, AdminRequests, SourceUp, SourceErrors,
		WatermarkSeconds, FreshnessSeconds, EndToEndLatency,
	)
}
