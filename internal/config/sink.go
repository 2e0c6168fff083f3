package config

import (
	"fmt"
	"strings"
	"time"
)

// Sink is where records go: exactly one key is set.
type Sink struct {
	Kafka    *KafkaSink    `yaml:"kafka"`
	File     *FileSink     `yaml:"file"`
	Postgres *SQLSink      `yaml:"postgres" driver:"postgres"`
	MySQL    *SQLSink      `yaml:"mysql" driver:"mysql"`
	SQLite   *SQLSink      `yaml:"sqlite" driver:"sqlite"`
	BigQuery *BigQuerySink `yaml:"bigquery"`
	PubSub   *PubSubSink   `yaml:"pubsub"`
}

// KafkaSink produces to a topic (a template over the record).
type KafkaSink struct {
	KafkaConn   `yaml:",inline"`
	Topic       string        `yaml:"topic"`       // template, e.g. "out-{{.Topic}}"
	Acks        string        `yaml:"acks"`        // all (default) | 1 | 0
	Compression string        `yaml:"compression"` // none | gzip | snappy | lz4 (default) | zstd
	Linger      time.Duration `yaml:"linger"`      // linger.ms; default 0: the engine batches already
	BatchBytes  int           `yaml:"batch_bytes"` // batch.size (max bytes per partition batch); default 1 MiB
	Idempotent  *bool         `yaml:"idempotent"`  // enable.idempotence; default true (requires acks: all)
	Partitioner string        `yaml:"partitioner"` // murmur2 (default, Java-compatible) | round_robin | manual (keep the source partition)
	ClientID    string        `yaml:"client_id"`
	// With delivery: exactly_once, each consumer's batches are written in
	// Kafka transactions that also commit the source offsets (KIP-447).
	// TransactionalIDPrefix starts every transactional.id (default
	// "sluice-<pipeline>"; a random part per process and the consumer
	// follow); TransactionTimeout is transaction.timeout.ms (default 10s:
	// how long a process that died can hold back read_committed readers).
	TransactionalIDPrefix string        `yaml:"transactional_id_prefix"`
	TransactionTimeout    time.Duration `yaml:"transaction_timeout"`
	// Format re-encodes values on the way out (e.g. JSON in, Avro out);
	// unset, the source bytes are written untouched.
	Format *Format `yaml:"format"`
	// CreateTopic creates the topic when it does not exist: a static
	// topic at start, a templated topic's rendered topics on first use.
	// Unset, a static topic that does not exist (and that the brokers do
	// not create on demand) stops the pipeline at start, named.
	CreateTopic *CreateTopic `yaml:"create_topic"`
}

// CreateTopic is how a sink creates a topic that does not exist. Zero
// values take the broker's defaults (num.partitions,
// default.replication.factor).
type CreateTopic struct {
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
}

// FileSink writes JSON lines; path "-" is stdout.
type FileSink struct {
	Path string `yaml:"path"`
	// Sync fsyncs after every batch (default true for files): a batch is
	// acked only once it is on disk.
	Sync *bool `yaml:"sync"`
}

func (s *Sink) applyDefaults() {
	if s.PubSub != nil {
		s.PubSub.applyDefaults()
	}
	if k := s.Kafka; k != nil {
		if k.Acks == "" {
			k.Acks = "all"
		}
		if k.Compression == "" {
			k.Compression = "lz4"
		}
		if k.Linger == 0 {
			k.Linger = 0
		}
		if k.BatchBytes == 0 {
			k.BatchBytes = 1 << 20
		}
		if k.TransactionTimeout == 0 {
			k.TransactionTimeout = 10 * time.Second
		}
		if k.Partitioner == "" {
			k.Partitioner = "murmur2"
		}
		if k.Idempotent == nil {
			t := k.Acks == "all"
			k.Idempotent = &t
		}
	}
	if f := s.File; f != nil && f.Sync == nil {
		t := f.Path != "-"
		f.Sync = &t
	}
	for _, q := range []*SQLSink{s.Postgres, s.MySQL, s.SQLite} {
		if q != nil {
			q.applyDefaults()
		}
	}
	if b := s.BigQuery; b != nil {
		b.applyDefaults()
	}
}

// sinkKeys lists the sinks set, for the "exactly one" check.
func (s *Sink) sinkKeys() []string {
	var keys []string
	if s.Kafka != nil {
		keys = append(keys, "kafka")
	}
	if s.File != nil {
		keys = append(keys, "file")
	}
	if s.Postgres != nil {
		keys = append(keys, "postgres")
	}
	if s.MySQL != nil {
		keys = append(keys, "mysql")
	}
	if s.SQLite != nil {
		keys = append(keys, "sqlite")
	}
	if s.BigQuery != nil {
		keys = append(keys, "bigquery")
	}
	if s.PubSub != nil {
		keys = append(keys, "pubsub")
	}
	return keys
}

func (s *Sink) validate(v *validator, p *Pipeline) {
	keys := s.sinkKeys()
	if len(keys) != 1 {
		v.root().probs = append(v.root().probs, fmt.Sprintf("%s: exactly one sink is needed (kafka, file, postgres, mysql, sqlite, bigquery, pubsub); found %d%s",
			trimDot(v.prefix), len(keys), listIfAny(keys)))
	}
	if ps := s.PubSub; ps != nil {
		ps.validate(v.sub("pubsub"))
		if p.Delivery == ExactlyOnce {
			v.add("pubsub", "delivery: exactly_once is not supported by the pubsub sink; use at_least_once")
		}
	}
	if k := s.Kafka; k != nil {
		kv := v.sub("kafka")
		k.KafkaConn.validate(kv)
		kv.required("topic", k.Topic)
		kv.template("topic", k.Topic)
		kv.oneOf("acks", k.Acks, "all", "1", "0", "-1")
		kv.oneOf("compression", k.Compression, "none", "gzip", "snappy", "lz4", "zstd")
		kv.oneOf("partitioner", k.Partitioner, "murmur2", "round_robin", "manual")
		if k.Idempotent != nil && *k.Idempotent && k.Acks != "all" && k.Acks != "-1" {
			kv.add("idempotent", "requires acks: all")
		}
		if k.BatchBytes < 0 {
			kv.add("batch_bytes", "must be > 0")
		}
		if p.Delivery == ExactlyOnce {
			if k.Acks != "all" && k.Acks != "-1" {
				kv.add("acks", "delivery: exactly_once (Kafka transactions) requires acks: all")
			}
			if k.Idempotent != nil && !*k.Idempotent {
				kv.add("idempotent", "delivery: exactly_once (Kafka transactions) requires idempotent: true")
			}
		}
		if c := k.CreateTopic; c != nil {
			if c.Partitions < 0 {
				kv.add("create_topic.partitions", "must be > 0 (or left out for the broker's default)")
			}
			if c.ReplicationFactor < 0 {
				kv.add("create_topic.replication_factor", "must be > 0 (or left out for the broker's default)")
			}
		}
		if k.TransactionTimeout < 0 || k.TransactionTimeout > 15*time.Minute {
			kv.add("transaction_timeout", fmt.Sprintf("%s is outside 1ms-15m", k.TransactionTimeout))
		}
		if f := k.Format; f != nil {
			f.applyDefaults()
			f.validate(kv.sub("format"))
			if f.Value == "avro-confluent" && f.Schema == "" {
				kv.add("format.schema", "an Avro schema is required to encode values as avro-confluent")
			}
			if f.Value != "raw" && p.Format.Value == "raw" {
				kv.add("format.value", "re-encoding needs decoded records: set the pipeline's format.value (json or avro-confluent)")
			}
		}
	}
	if f := s.File; f != nil {
		v.sub("file").required("path", f.Path)
		if p.Delivery == ExactlyOnce {
			v.add("file", "delivery: exactly_once is not supported by the file sink; use at_least_once")
		}
	}
	// The SQL sinks keep offsets in their own transaction, so they allow
	// delivery: exactly_once.
	if q := s.Postgres; q != nil {
		q.validate(v.sub("postgres"), "postgres")
	}
	if q := s.MySQL; q != nil {
		q.validate(v.sub("mysql"), "mysql")
	}
	if q := s.SQLite; q != nil {
		q.validate(v.sub("sqlite"), "sqlite")
	}
	if b := s.BigQuery; b != nil {
		b.validate(v, p)
	}
}

func listIfAny(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return ": " + strings.Join(keys, ", ")
}
