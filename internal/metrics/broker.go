package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BrokerMetrics are what the embedded broker of `sluice dev` counts about
// itself, under the names a Prometheus JMX exporter gives Apache Kafka's
// MBeans with the exporter's example Kafka configuration
// (lowercaseOutputName: BytesInPerSec of type BrokerTopicMetrics becomes
// kafka_server_brokertopicmetrics_bytesin_total, and so on), so that a
// dashboard or `sluice monitor --metrics-source jmx` built for a real
// cluster reads the dev broker too. Every series has a broker label (the
// node ID) because one endpoint serves every embedded broker, where a JMX
// exporter runs once per broker.
//
// They live in their own registry: the dev stack serves them on their own
// port, apart from a pipeline's /metrics.
type BrokerMetrics struct {
	Registry *prometheus.Registry

	// BytesIn is record bytes received in produce requests, by topic
	// (Kafka's BytesInPerSec: the record batches, not the framing).
	BytesIn *prometheus.CounterVec
	// BytesOut is record bytes sent in fetch responses, by topic
	// (BytesOutPerSec).
	BytesOut *prometheus.CounterVec
	// NetworkIn and NetworkOut are every byte read from and written to
	// client sockets (socket-server-metrics incoming-byte-total and
	// outgoing-byte-total).
	NetworkIn, NetworkOut *prometheus.CounterVec
	// Connections is the number of open client connections
	// (socket-server-metrics connection-count).
	Connections *prometheus.GaugeVec
	// ConnectionsCreated counts connections accepted
	// (connection-creation-total).
	ConnectionsCreated *prometheus.CounterVec
	// Requests counts requests by API name and version
	// (RequestMetrics RequestsPerSec).
	Requests *prometheus.CounterVec
	// RequestsByClient counts requests by API name and client.id, for
	// at most MaxClientIDs client ids (later ones count as "other").
	RequestsByClient *prometheus.CounterVec
	// CPUCores is the number of cores the process may use; with the
	// process collector's process_cpu_seconds_total it gives the broker
	// process's load.
	CPUCores prometheus.Gauge
}

// MaxClientIDs bounds the client_id label of RequestsByClient.
const MaxClientIDs = 100

// NewBrokerMetrics declares the embedded broker's metrics in a new
// registry, with the process collector (process_cpu_seconds_total).
func NewBrokerMetrics() *BrokerMetrics {
	m := &BrokerMetrics{
		Registry: prometheus.NewRegistry(),
		BytesIn: counterVec("kafka_server_brokertopicmetrics_bytesin_total",
			"Record bytes received in produce requests (BrokerTopicMetrics BytesInPerSec).", "broker", "topic"),
		BytesOut: counterVec("kafka_server_brokertopicmetrics_bytesout_total",
			"Record bytes sent in fetch responses (BrokerTopicMetrics BytesOutPerSec).", "broker", "topic"),
		NetworkIn: counterVec("kafka_server_socket_server_metrics_incoming_byte_total",
			"Bytes read from client connections, framing included.", "broker", "listener"),
		NetworkOut: counterVec("kafka_server_socket_server_metrics_outgoing_byte_total",
			"Bytes written to client connections, framing included.", "broker", "listener"),
		Connections: gaugeVec("kafka_server_socket_server_metrics_connection_count",
			"Open client connections.", "broker", "listener"),
		ConnectionsCreated: counterVec("kafka_server_socket_server_metrics_connection_creation_total",
			"Client connections accepted.", "broker", "listener"),
		Requests: counterVec("kafka_network_requestmetrics_requests_total",
			"Requests received, by API (RequestMetrics RequestsPerSec).", "broker", "request", "version"),
		RequestsByClient: counterVec("sluice_broker_requests_by_client_total",
			"Requests received, by API and client.id (at most 100 client ids; the rest are \"other\").", "broker", "request", "client_id"),
		CPUCores: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_broker_cpu_cores",
			Help: "Cores the broker process may use (GOMAXPROCS): rate(process_cpu_seconds_total) divided by this is its load."}),
	}
	m.CPUCores.Set(float64(runtime.GOMAXPROCS(0)))
	m.Registry.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.BytesIn, m.BytesOut, m.NetworkIn, m.NetworkOut, m.Connections, m.ConnectionsCreated,
		m.Requests, m.RequestsByClient, m.CPUCores)
	return m
}
