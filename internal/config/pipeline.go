package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/transform"
)

// Pipeline is one source -> decode -> sink flow.
type Pipeline struct {
	Name     string `yaml:"name" doc:"Pipeline name (required): 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit. Names its metrics, logs, admin API routes and offsets." example:"films-copy"`
	Source   Source `yaml:"source" doc:"Where records come from: exactly one of kafka or pubsub."`
	Format   Format `yaml:"format" doc:"How the source's keys and values are encoded."`
	Delivery string `yaml:"delivery" default:"at_least_once" enum:"at_least_once|exactly_once" doc:"Delivery guarantee. exactly_once keeps the source offsets with the data (SQL sinks) or in Kafka transactions (kafka sink); see README, Delivery guarantees."`
	OnError  string `yaml:"on_error" default:"fail" enum:"dlq|fail|skip" doc:"What a record that cannot be decoded or written does: dlq sends it to the dead-letter topic with the reason, fail stops the pipeline naming it, skip counts it in a metric and logs a warning."`
	DLQ      DLQ    `yaml:"dlq" doc:"Where bad records go with on_error: dlq."`
	Batch    Batch  `yaml:"batch" doc:"What one sink write holds."`
	Limits   Limits `yaml:"limits" doc:"What a pipeline holds in memory: records read but not yet acked. When full, consumers stop fetching."`
	// Transforms filter and reshape decoded records before the sink, in
	// order (see package transform).
	Transforms []transform.Step `yaml:"transforms" doc:"Steps in CEL between decode and sink, in order: filter, set, drop, rename, mask, key, headers (see README, Transforms)."`
	Sink       Sink             `yaml:"sink" doc:"Where records go: exactly one sink (or sinks with route)."`
	// Sinks, instead of Sink, are several named sinks; Route says which
	// one each record goes to (see routes.go).
	Sinks map[string]Sink   `yaml:"sinks" doc:"Several named sinks instead of sink, each like sink; route chooses each record's (see README, Routing to several sinks)."`
	Route []transform.Route `yaml:"route" doc:"With sinks: [{when: EXPR, sink: NAME}, ..., {sink: NAME}]; the first route whose CEL expression is true takes the record, the last has no when."`
	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" default:"30s" min:"1ns" doc:"Bound on the graceful drain, on a signal or when a consumer fails for good; the other consumers then drain too."`
	// MaxRetryTime bounds how long one write, decode or dead-letter send
	// is retried on a transient error, and how long a consumer's source
	// reads may go on failing, before the pipeline stops with it
	// (default 10m; "0s" is refused, use a large value to wait longer).
	MaxRetryTime time.Duration `yaml:"max_retry_time" default:"10m" min:"1ns" doc:"How long one write, decode or dead-letter send is retried on a transient error (database, broker or registry down), and how long source reads may go on failing (Kafka brokers gone, a Pub/Sub subscription deleted), before the pipeline stops with the error; status shows the pipeline degraded meanwhile. Read failures count as one run until a read succeeds, 2m pass without a failure, or 15s pass without one while the source is healthy. 0s is refused: use a large value to wait longer."`
	// Parallelism writes each consumer's records on several workers
	// (see Parallelism); unset: one writer per consumer.
	Parallelism *Parallelism `yaml:"parallelism" doc:"Writes each consumer's records to the sink on several workers, beyond the partition count; unset: one writer per consumer." example:"{workers: 16, by: key}"`
	// AllowDuplicates says at-least-once without order is enough: it
	// allows parallelism.by: round_robin and makes it the default.
	// Default false; refused with delivery: exactly_once.
	AllowDuplicates bool `yaml:"allow_duplicates" doc:"At-least-once without order is enough: allows parallelism.by: round_robin and makes it the default; refused with delivery: exactly_once."`
	// Timestamp is the timestamp policy and watermark settings (see
	// eventtime.go).
	Timestamp Timestamp `yaml:"timestamp" doc:"Which time records carry to the sink and to the watermark, and when an idle partition stops holding the watermark back (see README, Event time)." example:"{policy: field, field: occurred_at, format: unix_ms}"`
}

// DLQ is where bad records go with on_error: dlq. By default a Kafka topic
// named after the source topic with ".dlq", on the source's brokers.
type DLQ struct {
	Topic   string   `yaml:"topic" default:"{{.Topic}}.dlq" doc:"Dead-letter topic, a template over the record; created on first use."`
	Brokers []string `yaml:"brokers" doc:"Brokers of the dead-letter topic; default: the Kafka source's (required when the source is not Kafka)."`
	// BigQuery, instead of a topic, writes bad records as rows of an error
	// table next to the sink's tables (bigquery sink only). Default none.
	BigQuery *BigQueryDLQ `yaml:"bigquery" doc:"Instead of a topic, writes bad records as rows of an error table next to the sink's tables (bigquery sink only), as Dataflow's error tables."`
}

// Batch bounds what one sink write holds.
type Batch struct {
	MaxRecords int           `yaml:"max_records" default:"10000" min:"1" doc:"Records per sink write; default 50000 with delivery: exactly_once into Kafka (a transaction per batch), or limits.max_in_flight_records when that is lower."`
	MaxBytes   int           `yaml:"max_bytes" default:"8MiB" min:"1" doc:"Bytes per sink write."`
	Linger     time.Duration `yaml:"linger" default:"50ms" min:"1ns" doc:"How long a partial batch waits for more records."`
}

// Limits bound what a pipeline holds in memory: records read but not yet
// acked. When full, consumers stop fetching.
type Limits struct {
	MaxInFlightRecords int `yaml:"max_in_flight_records" default:"50000" min:"1" doc:"Records read but not yet acked; reading stops when reached. Default 100000 with delivery: exactly_once into Kafka. At least batch.max_records."`
	MaxInFlightBytes   int `yaml:"max_in_flight_bytes" default:"64MiB" min:"1" doc:"The same in bytes; a decoded record also counts an estimate of its decoded form (about 80 bytes per field plus its size again), so the cap tracks memory."`
}

// Admin is the HTTP admin API.
type Admin struct {
	Listen string `yaml:"listen" default:"127.0.0.1:8080" doc:"Address (host:port) of the admin API and dashboard."`
	// Token is required by every request that changes something, and to
	// see a pipeline's configuration; without it the admin API only
	// listens on loopback. Default: SLUICE_ADMIN_TOKEN.
	Token string `yaml:"token" secret:"true" doc:"Bearer token required by every admin call that changes something and to see a pipeline's config; required to listen beyond loopback. Default: the environment variable SLUICE_ADMIN_TOKEN." example:"${SLUICE_ADMIN_TOKEN}"`
	// AllowedHosts are the names, besides the listen address and
	// localhost, that requests may name in their Host header (a reverse
	// proxy's, the machine's DNS name); any other is refused, against DNS
	// rebinding.
	AllowedHosts []string `yaml:"allowed_hosts" doc:"Further names (a reverse proxy's, the machine's DNS name) a request's Host header may carry besides the listen address and localhost; others are refused, against DNS rebinding."`
	// MaxConsumers caps the consumers a pipeline can be given at run time
	// through the admin API; default 64 (a pipeline configured with more
	// keeps its own count as its cap).
	MaxConsumers int `yaml:"max_consumers" default:"64" doc:"Most consumers a pipeline can reach through the admin API (1-256; a pipeline configured with more keeps its own count as its cap)."`
	// CertFile and KeyFile (PEM) serve the admin API over HTTPS.
	CertFile string `yaml:"cert_file" doc:"PEM certificate: serve the admin API and dashboard over HTTPS (with key_file)."`
	KeyFile  string `yaml:"key_file" doc:"PEM private key of cert_file."`
}

const (
	AtLeastOnce = "at_least_once"
	ExactlyOnce = "exactly_once"

	OnErrorDLQ  = "dlq"
	OnErrorFail = "fail"
	OnErrorSkip = "skip"
)

var pipelineName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// applyDefaults fills what the file left unset: the defaults that depend
// on other settings here, then every field's default tag (spec.go).
func (f *File) applyDefaults() {
	for i := range f.Pipelines {
		p := &f.Pipelines[i]
		// Exactly-once into Kafka commits a transaction per batch, two
		// round trips each: larger batches by default (Kafka Streams
		// commits every 100 ms under exactly-once; 50,000 records is
		// about that here), with read-ahead room for the next one.
		eosKafka := p.Delivery == ExactlyOnce && p.Sink.Kafka != nil
		if p.Limits.MaxInFlightRecords == 0 && eosKafka {
			p.Limits.MaxInFlightRecords = 100000
		}
		if p.Batch.MaxRecords == 0 && eosKafka {
			p.Batch.MaxRecords = 50000
			if l := p.Limits.MaxInFlightRecords; l > 0 && l < p.Batch.MaxRecords {
				p.Batch.MaxRecords = l
			}
		}
		if b := p.Sink.BigQuery; b != nil && p.Delivery == ExactlyOnce && p.Batch.Linger == 0 {
			p.Batch.Linger = b.commitInterval() // a batch is a commit
		}
		p.applyParallelismDefaults()
		p.Sink.applyDefaults()
		for _, s := range p.Sinks {
			s.applyDefaults() // its fields are pointers: the map's copy is enough
		}
	}
	applySpecDefaults(reflect.ValueOf(f))
}

// Validate returns every problem with its field path.
func (f *File) Validate() Problems {
	var probs Problems
	if len(f.Pipelines) == 0 {
		probs = append(probs, "pipelines: at least one pipeline is needed")
	}
	names := map[string]bool{}
	for i := range f.Pipelines {
		p := &f.Pipelines[i]
		prefix := ""
		if len(f.Pipelines) > 1 {
			prefix = fmt.Sprintf("pipelines[%d].", i)
		}
		var v validator
		v.prefix = prefix
		p.validate(&v)
		probs = append(probs, v.probs...)
		if p.Name != "" && names[p.Name] {
			probs = append(probs, fmt.Sprintf("%sname: %q is used by another pipeline in this file", prefix, p.Name))
		}
		names[p.Name] = true
	}
	if f.Admin != nil {
		probs = append(probs, f.Admin.validate()...)
	}
	return probs
}

func (a *Admin) validate() []string {
	var probs []string
	if a.Listen != "" {
		if err := checkListenAddress(a.Listen); err != nil {
			probs = append(probs, fmt.Sprintf("admin.listen: %q %v (write host:port, such as 127.0.0.1:8080 or :8080)", a.Listen, err))
		}
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		probs = append(probs, "admin.cert_file: cert_file and key_file go together")
	}
	if a.MaxConsumers < 0 || a.MaxConsumers > 256 {
		probs = append(probs, "admin.max_consumers: must be between 1 and 256 (0 or unset: 64)")
	}
	for i, h := range a.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ \t@") {
			probs = append(probs, fmt.Sprintf("admin.allowed_hosts[%d]: %q is not a host name (write sluice.example.com or sluice.example.com:8443, without a scheme or path)", i, h))
		}
	}
	return probs
}

func (p *Pipeline) validate(v *validator) {
	if p.Name == "" {
		v.add("name", "is required")
	} else if !pipelineName.MatchString(p.Name) {
		v.add("name", "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	checkSpecs(v, reflect.ValueOf(p))
	if p.Delivery == ExactlyOnce && p.Source.PubSub != nil {
		v.add("delivery", "exactly_once keeps Kafka offsets with the rows; a pubsub source has none (it is at least once: a message is acked after the sink is durable)")
	}
	if p.DLQ.BigQuery != nil {
		p.validateBigQueryDLQ(v)
	} else if p.OnError == OnErrorDLQ && p.Source.Kafka == nil && len(p.DLQ.Brokers) == 0 {
		v.add("dlq.brokers", "is required with on_error: dlq when the source is not Kafka")
	}
	// Transforms that reshape records make fields the reader schema does
	// not have: templates are then not held to it.
	if p.Format.Value == "avro-confluent" && p.Format.ReaderSchema != "" && !transform.ChangesFields(p.Transforms) {
		v.root().valueFields = readerSchemaFields(p.Format.ReaderSchema)
	}
	v.template("dlq.topic", p.DLQ.Topic)
	if p.Limits.MaxInFlightRecords > 0 && p.Limits.MaxInFlightRecords < p.Batch.MaxRecords {
		v.add("limits.max_in_flight_records", fmt.Sprintf("must be at least batch.max_records (%d)", p.Batch.MaxRecords))
	}
	p.Timestamp.validate(v.sub("timestamp"), p)
	p.Source.validate(v.sub("source"))
	p.Format.validate(v.sub("format"))
	if len(p.Sinks) == 0 && len(p.Route) == 0 {
		p.Sink.validate(v.sub("sink"), p)
	} else {
		p.validateRoutes(v)
	}
	p.validateTransforms(v)
	p.validateParallelism(v)
}

// checkListenAddress checks host:port syntax, as net.Listen will need it,
// without listening.
func checkListenAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not an address")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		if _, lerr := net.LookupPort("tcp", port); err == nil || lerr != nil { // a service name such as "http" is a port too
			return fmt.Errorf("has no valid port (%q)", port)
		}
	}
	if strings.ContainsAny(host, " /\t@") {
		return fmt.Errorf("has no valid host (%q)", host)
	}
	return nil
}
