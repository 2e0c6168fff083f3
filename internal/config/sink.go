package config

import (
	"fmt"
	"strings"
	"time"
)

// Sink is where records go: exactly one key is set.
type Sink struct {
	Kafka    *KafkaSink    `yaml:"kafka" doc:"Produce to a Kafka topic."`
	File     *FileSink     `yaml:"file" doc:"Write JSON lines to a file or stdout."`
	Postgres *SQLSink      `yaml:"postgres" driver:"postgres" doc:"Write to a PostgreSQL table, optionally a staging table merged by your procedure (see README, Kafka -> SQL)."`
	MySQL    *SQLSink      `yaml:"mysql" driver:"mysql" doc:"Write to a MySQL or MariaDB table; the same keys as postgres."`
	SQLite   *SQLSink      `yaml:"sqlite" driver:"sqlite" doc:"Write to an SQLite table (embedded); the same keys as postgres, with path instead of dsn."`
	BigQuery *BigQuerySink `yaml:"bigquery" doc:"Append to BigQuery tables through the Storage Write API (see README, Kafka -> BigQuery)."`
	PubSub   *PubSubSink   `yaml:"pubsub" doc:"Publish to a Google Pub/Sub topic."`
}

// KafkaSink produces to a topic (a template over the record).
type KafkaSink struct {
	KafkaConn   `yaml:",inline"`
	Topic       string        `yaml:"topic" doc:"Target topic (required), a template over the record. A static topic must exist at start (or be created: create_topic); a rendered topic that does not exist is retried up to max_retry_time." example:"out-{{.Topic}}"`
	Acks        string        `yaml:"acks" default:"all" enum:"all|1|0|-1" doc:"Producer acks."`
	Compression string        `yaml:"compression" default:"lz4" enum:"none|gzip|snappy|lz4|zstd" doc:"Producer compression."`
	Linger      time.Duration `yaml:"linger" advanced:"true" doc:"Producer linger (linger.ms); default 0: the engine already batches, so a linger only delays the end of each batch."`
	BatchBytes  int           `yaml:"batch_bytes" default:"1MiB" min:"1" advanced:"true" doc:"Producer batch size (batch.size): the most bytes of one partition's batch."`
	Idempotent  *bool         `yaml:"idempotent" advanced:"true" doc:"enable.idempotence; default true with acks: all, which it requires."`
	Partitioner string        `yaml:"partitioner" default:"murmur2" enum:"murmur2|round_robin|manual" doc:"murmur2 hashes keys as the Java client does; round_robin spreads records; manual keeps the source partition."`
	ClientID    string        `yaml:"client_id" advanced:"true" doc:"The producer's client.id."`
	// With delivery: exactly_once, each consumer's batches are written in
	// Kafka transactions that also commit the source offsets (KIP-447).
	// TransactionalIDPrefix starts every transactional.id (default
	// "sluice-<pipeline>"; a random part per process and the consumer
	// follow); TransactionTimeout is transaction.timeout.ms (default 10s:
	// how long a process that died can hold back read_committed readers).
	TransactionalIDPrefix string        `yaml:"transactional_id_prefix" advanced:"true" doc:"With delivery: exactly_once: the start of each consumer's transactional.id (a random part per process and the consumer name follow); default sluice-<pipeline>."`
	TransactionTimeout    time.Duration `yaml:"transaction_timeout" default:"10s" min:"1ms" max:"15m" advanced:"true" doc:"With delivery: exactly_once: transaction.timeout.ms, how long a process that died can hold back read_committed readers."`
	// Format re-encodes values on the way out (e.g. JSON in, Avro out);
	// unset, the source bytes are written untouched.
	Format *Format `yaml:"format" doc:"Re-encode values on the way out (e.g. JSON in, Avro out); left out, the source bytes are written untouched."`
	// CreateTopic creates the topic when it does not exist: a static
	// topic at start, a templated topic's rendered topics on first use.
	// Unset, a static topic that does not exist (and that the brokers do
	// not create on demand) stops the pipeline at start, named.
	CreateTopic *CreateTopic `yaml:"create_topic" doc:"Create the topic when it does not exist: a static topic at start, rendered ones on first use."`
}

// CreateTopic is how a sink creates a topic that does not exist. Zero
// values take the broker's defaults (num.partitions,
// default.replication.factor).
type CreateTopic struct {
	Partitions        int32 `yaml:"partitions" doc:"Partitions of a created topic; default: the broker's num.partitions."`
	ReplicationFactor int16 `yaml:"replication_factor" doc:"Replicas of a created topic; default: the broker's default.replication.factor."`
}

// FileSink writes JSON lines; path "-" is stdout.
type FileSink struct {
	Path string `yaml:"path" doc:"JSON-lines file to append to (required); - is stdout." example:"out.jsonl"`
	// Sync fsyncs after every batch (default true for files): a batch is
	// acked only once it is on disk.
	Sync *bool `yaml:"sync" doc:"fsync after every batch, so a batch is acked only once it is on disk; default true for files, false for stdout."`
}

func (s *Sink) applyDefaults() {
	if k := s.Kafka; k != nil && k.Idempotent == nil {
		t := k.Acks == "all" || k.Acks == ""
		k.Idempotent = &t
	}
	if f := s.File; f != nil && f.Sync == nil {
		t := f.Path != "-"
		f.Sync = &t
	}
	if b := s.BigQuery; b != nil {
		b.applyTableSpecDefaults()
	}
	for kind, q := range map[string]*SQLSink{"postgres": s.Postgres, "mysql": s.MySQL, "sqlite": s.SQLite} {
		if q != nil {
			q.applyDefaults(kind)
		}
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
		if k.Idempotent != nil && *k.Idempotent && k.Acks != "all" && k.Acks != "-1" {
			kv.add("idempotent", "requires acks: all")
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
		if f := k.Format; f != nil {
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
