package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/transform"
)

// Pipeline is one source -> decode -> sink flow.
type Pipeline struct {
	Name     string `yaml:"name"`
	Source   Source `yaml:"source"`
	Format   Format `yaml:"format"`
	Delivery string `yaml:"delivery"` // at_least_once (default) | exactly_once
	OnError  string `yaml:"on_error"` // dlq | fail | skip (default fail)
	DLQ      DLQ    `yaml:"dlq"`
	Batch    Batch  `yaml:"batch"`
	Limits   Limits `yaml:"limits"`
	// Transforms filter and reshape decoded records before the sink, in
	// order (see package transform).
	Transforms []transform.Step `yaml:"transforms"`
	Sink       Sink             `yaml:"sink"`
	// Sinks, instead of Sink, are several named sinks; Route says which
	// one each record goes to (see routes.go).
	Sinks map[string]Sink   `yaml:"sinks"`
	Route []transform.Route `yaml:"route"`
	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxRetryTime bounds how long one write, decode or dead-letter send
	// is retried on a transient error before the pipeline stops with it
	// (default 10m; "0s" is refused, use a large value to wait longer).
	MaxRetryTime time.Duration `yaml:"max_retry_time"`
	// Timestamp is the timestamp policy and watermark settings (see
	// eventtime.go); default policy source, idle_partition_timeout 30s.
	Timestamp Timestamp `yaml:"timestamp"`
}

// DLQ is where bad records go with on_error: dlq. By default a Kafka topic
// named after the source topic with ".dlq", on the source's brokers.
type DLQ struct {
	Topic   string   `yaml:"topic"`   // template; default "{{.Topic}}.dlq"
	Brokers []string `yaml:"brokers"` // default: the Kafka source's brokers
}

// Batch bounds what one sink write holds.
type Batch struct {
	MaxRecords int           `yaml:"max_records"` // default 10000
	MaxBytes   int           `yaml:"max_bytes"`   // default 8 MiB
	Linger     time.Duration `yaml:"linger"`      // default 50ms
}

// Limits bound what a pipeline holds in memory: records read but not yet
// acked. When full, consumers stop fetching.
type Limits struct {
	MaxInFlightRecords int `yaml:"max_in_flight_records"` // default 50000
	MaxInFlightBytes   int `yaml:"max_in_flight_bytes"`   // default 64 MiB
}

// Admin is the HTTP admin API.
type Admin struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8080
	// Token is required by every request that changes something, and to
	// see a pipeline's configuration; without it the admin API only
	// listens on loopback. Default: SLUICE_ADMIN_TOKEN.
	Token string `yaml:"token" secret:"true"`
	// AllowedHosts are the names, besides the listen address and
	// localhost, that requests may name in their Host header (a reverse
	// proxy's, the machine's DNS name); any other is refused, against DNS
	// rebinding.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// MaxConsumers caps the consumers a pipeline can be given at run time
	// through the admin API; default 64 (a pipeline configured with more
	// keeps its own count as its cap).
	MaxConsumers int `yaml:"max_consumers"`
	// CertFile and KeyFile (PEM) serve the admin API over HTTPS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

const (
	AtLeastOnce = "at_least_once"
	ExactlyOnce = "exactly_once"

	OnErrorDLQ  = "dlq"
	OnErrorFail = "fail"
	OnErrorSkip = "skip"
)

var pipelineName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (f *File) applyDefaults() {
	for i := range f.Pipelines {
		p := &f.Pipelines[i]
		if p.Delivery == "" {
			p.Delivery = AtLeastOnce
		}
		if p.OnError == "" {
			p.OnError = OnErrorFail
		}
		if p.DLQ.Topic == "" {
			p.DLQ.Topic = "{{.Topic}}.dlq"
		}
		// Exactly-once into Kafka commits a transaction per batch, two
		// round trips each: larger batches by default (Kafka Streams
		// commits every 100 ms under exactly-once; 50,000 records is
		// about that here), with read-ahead room for the next one.
		eosKafka := p.Delivery == ExactlyOnce && p.Sink.Kafka != nil
		if p.Limits.MaxInFlightRecords == 0 && eosKafka {
			p.Limits.MaxInFlightRecords = 100000
		}
		if p.Batch.MaxRecords == 0 {
			p.Batch.MaxRecords = 10000
			if eosKafka {
				p.Batch.MaxRecords = 50000
				if l := p.Limits.MaxInFlightRecords; l > 0 && l < p.Batch.MaxRecords {
					p.Batch.MaxRecords = l
				}
			}
		}
		if p.Batch.MaxBytes == 0 {
			p.Batch.MaxBytes = 8 << 20
		}
		if p.Batch.Linger == 0 {
			p.Batch.Linger = 50 * time.Millisecond
		}
		if p.Limits.MaxInFlightRecords == 0 {
			p.Limits.MaxInFlightRecords = 50000
		}
		if p.Limits.MaxInFlightBytes == 0 {
			p.Limits.MaxInFlightBytes = 64 << 20
		}
		if p.ShutdownTimeout == 0 {
			p.ShutdownTimeout = 30 * time.Second
		}
		if p.MaxRetryTime == 0 {
			p.MaxRetryTime = 10 * time.Minute
		}
		p.Timestamp.applyDefaults()
		p.Source.applyDefaults()
		p.Format.applyDefaults()
		p.Sink.applyDefaults()
		for _, s := range p.Sinks {
			s.applyDefaults() // its fields are pointers: the map's copy is enough
		}
	}
	if f.Admin != nil && f.Admin.Listen == "" {
		f.Admin.Listen = "127.0.0.1:8080"
	}
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
	v.oneOf("delivery", p.Delivery, AtLeastOnce, ExactlyOnce)
	v.oneOf("on_error", p.OnError, OnErrorDLQ, OnErrorFail, OnErrorSkip)
	if p.Delivery == ExactlyOnce && p.Source.PubSub != nil {
		v.add("delivery", "exactly_once keeps Kafka offsets with the rows; a pubsub source has none (it is at least once: a message is acked after the sink is durable)")
	}
	if p.OnError == OnErrorDLQ && p.Source.Kafka == nil && len(p.DLQ.Brokers) == 0 {
		v.add("dlq.brokers", "is required with on_error: dlq when the source is not Kafka")
	}
	// Transforms that reshape records make fields the reader schema does
	// not have: templates are then not held to it.
	if p.Format.Value == "avro-confluent" && p.Format.ReaderSchema != "" && !transform.ChangesFields(p.Transforms) {
		v.root().valueFields = readerSchemaFields(p.Format.ReaderSchema)
	}
	v.template("dlq.topic", p.DLQ.Topic)
	v.positive("batch.max_records", p.Batch.MaxRecords)
	v.positive("batch.max_bytes", p.Batch.MaxBytes)
	v.positiveDuration("batch.linger", p.Batch.Linger)
	v.positive("limits.max_in_flight_records", p.Limits.MaxInFlightRecords)
	v.positive("limits.max_in_flight_bytes", p.Limits.MaxInFlightBytes)
	if p.Limits.MaxInFlightRecords > 0 && p.Limits.MaxInFlightRecords < p.Batch.MaxRecords {
		v.add("limits.max_in_flight_records", fmt.Sprintf("must be at least batch.max_records (%d)", p.Batch.MaxRecords))
	}
	v.positiveDuration("shutdown_timeout", p.ShutdownTimeout)
	v.positiveDuration("max_retry_time", p.MaxRetryTime)
	p.Timestamp.validate(v.sub("timestamp"), p)
	p.Source.validate(v.sub("source"))
	p.Format.validate(v.sub("format"))
	if len(p.Sinks) == 0 && len(p.Route) == 0 {
		p.Sink.validate(v.sub("sink"), p)
	} else {
		p.validateRoutes(v)
	}
	p.validateTransforms(v)
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
