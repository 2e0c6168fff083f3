// Package metrics declares every Prometheus metric Sluice exports, in one
// place. Labels are bounded: pipeline, connector, topic, kind, never keys
// or offsets.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	InFlightRecords = gaugeVec("sluice_in_flight_records",
		"Records read but not yet acked.", "pipeline")
	InFlightBytes = gaugeVec("sluice_in_flight_bytes",
		"Bytes read but not yet acked.", "pipeline")
	ConsumerLag = gaugeVec("sluice_consumer_lag",
		"Records between the high watermark and the committed position.", "pipeline", "topic", "partition")
	Consumers = gaugeVec("sluice_consumers",
		"Consumers (group members) running in this process.", "pipeline")
	PipelineState = gaugeVec("sluice_pipeline_state",
		"1 for the pipeline's current state, 0 for the others.", "pipeline", "state")
)

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
		Errors, Retries, BatchRecords, WriteSeconds, CommitSeconds,
		InFlightRecords, InFlightBytes, ConsumerLag, Consumers, PipelineState,
	)
}
