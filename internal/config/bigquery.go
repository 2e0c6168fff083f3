package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// BigQuerySink appends records to BigQuery tables through the Storage Write
// API's default stream (at-least-once), over a small, bounded number of
// connections shared by every table and every bigquery pipeline of the
// process:
//
//	sink:
//	  bigquery: {project: demo, dataset: kafka, table: "kafka-{{.Topic}}",
//	             create_tables: true, create_dataset: true, max_connections: 4,
//	             endpoint: 127.0.0.1:9060, rest_endpoint: http://127.0.0.1:9050}
type BigQuerySink struct {
	// Project is the Google Cloud project holding the dataset.
	Project string `yaml:"project" doc:"The Google Cloud project holding the dataset (required)." example:"my-project"`
	// Dataset receives the tables; letters, digits and underscores.
	Dataset string `yaml:"dataset" doc:"The dataset receiving the tables (required): letters, digits and underscores." example:"kafka"`
	// Table is a template over the record (`kafka-{{.Topic}}`,
	// `{{.Value.kind}}`, `{{.Schema.Name}}`). What it renders is made a
	// valid table name: characters BigQuery does not allow become `_`;
	// an empty name or one over 1,024 bytes is bad input (on_error).
	Table string `yaml:"table" doc:"Table name (required), a template over the record; characters BigQuery does not allow become _, an empty name or one over 1,024 bytes is bad input (on_error)." example:"kafka-{{.Topic}}"`
	// CreateTables creates a missing table with a schema mapped from the
	// record's Avro schema, or inferred from its JSON value. Fields new to
	// an existing table are added as NULLABLE columns either way.
	CreateTables bool `yaml:"create_tables" doc:"Create a missing table with a schema mapped from the record's Avro schema, or inferred from its JSON value. New fields are added to existing tables as NULLABLE columns either way."`
	// CreateDataset creates the dataset when it is missing.
	CreateDataset bool `yaml:"create_dataset" doc:"Create the dataset when it is missing."`
	// Location is where create_dataset creates the dataset. Default US.
	Location string `yaml:"location" default:"US" doc:"Where create_dataset creates the dataset."`
	// MaxConnections bounds both the TCP connections to the Storage Write
	// API and the concurrent AppendRows streams over them (what BigQuery's
	// "concurrent connections" quota counts), whatever the number of
	// tables. Default 4. When BigQuery refuses a stream for quota the sink
	// lowers the bound it uses and says so in a warning.
	MaxConnections int `yaml:"max_connections" default:"4" min:"1" max:"100" doc:"Bound on the connections to the Storage Write API and the concurrent AppendRows streams over them, whatever the number of tables; lowered (with a warning) when BigQuery refuses a stream for quota."`
	// MaxInFlightAppends bounds the appends awaiting their result on one
	// connection. Default 64.
	MaxInFlightAppends int `yaml:"max_in_flight_appends" default:"64" min:"1" max:"10000" advanced:"true" doc:"Appends awaiting their result on one connection."`
	// AppendTimeout is the deadline of one append, from sending to its
	// result; an append past it is retried. Default 30s.
	AppendTimeout time.Duration `yaml:"append_timeout" default:"30s" min:"1ns" advanced:"true" doc:"Deadline of one append, from sending to its result; an append past it is retried."`
	// IdleTimeout closes the writer of a table no record went to for this
	// long. Default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout" default:"5m" min:"1ns" advanced:"true" doc:"Close the writer of a table no record went to for this long."`
	// Metadata lists metadata columns to fill, each named _sluice_<name>:
	// topic (STRING), partition (INT64), offset (INT64), timestamp
	// (TIMESTAMP), key (STRING). Default none.
	Metadata []string `yaml:"metadata" enum:"topic|partition|offset|timestamp|key" doc:"Metadata columns to fill, each named _sluice_<name>: topic (STRING), partition (INT64), offset (INT64), timestamp (TIMESTAMP), key (STRING). Default none."`
	// Endpoint is the Storage Write API's gRPC address, host:port; default
	// Google's. RESTEndpoint is the BigQuery REST API's base URL; default
	// Google's. An emulator is reached with both set: an endpoint on a
	// loopback address, or a rest_endpoint with http://, is spoken to
	// without TLS and without credentials.
	Endpoint     string `yaml:"endpoint" advanced:"true" doc:"The Storage Write API's gRPC address, host:port; default Google's. With rest_endpoint, for an emulator: a loopback endpoint or an http:// rest_endpoint is spoken to without TLS and credentials." example:"127.0.0.1:9060"`
	RESTEndpoint string `yaml:"rest_endpoint" advanced:"true" doc:"The BigQuery REST API's base URL; default Google's. Goes with endpoint." example:"http://127.0.0.1:9050"`
	// CommitInterval, with delivery: exactly_once, is how long a batch
	// gathers records before it is written to PENDING streams and
	// committed: one CreateWriteStream call per table per batch, which
	// BigQuery limits per hour (see ExpectedTables). It is the pipeline's
	// default batch.linger then. Default 10s.
	CommitInterval time.Duration `yaml:"commit_interval" default:"10s" doc:"With delivery: exactly_once, how long a batch gathers records before it is written to PENDING streams and committed (one CreateWriteStream call per table per batch, which BigQuery limits per hour); the pipeline's default batch.linger then."`
	// ExpectedTables is how many tables one batch may write, for the
	// CreateWriteStream quota check of delivery: exactly_once when the
	// table is a template. Default: 1 for a constant table, 20 for a
	// template.
	ExpectedTables int `yaml:"expected_tables" min:"0" doc:"How many tables one batch may write, for the CreateWriteStream quota check of delivery: exactly_once; default 1 for a constant table, 20 for a template."`
	// CredentialsFile is a service account (or other Google credentials)
	// JSON file; default: application default credentials.
	CredentialsFile string `yaml:"credentials_file" doc:"A service account (or other Google credentials) JSON file; default: Application Default Credentials."`
	// TimePartitioning partitions the tables the sink creates by a
	// TIMESTAMP, DATE or DATETIME column (or by ingestion time without a
	// field). Default none: tables are not partitioned.
	TimePartitioning *BigQueryTimePartitioning `yaml:"time_partitioning" doc:"Partitions the tables the sink creates by a TIMESTAMP, DATE or DATETIME column, or by ingestion time without a field; default none."`
	// Clustering lists up to 4 top-level columns the tables the sink
	// creates are clustered by, in order. Default none.
	Clustering []string `yaml:"clustering" doc:"Up to 4 top-level columns the created tables are clustered by, in order; default none." example:"[country, user_id]"`
	// RequirePartitionFilter makes queries on the created tables name the
	// partition column in a filter. Needs time_partitioning. Default false.
	RequirePartitionFilter bool `yaml:"require_partition_filter" doc:"Queries on the created tables must filter on the partition column; needs time_partitioning."`
	// Description is set on the tables the sink creates. Default none.
	Description string `yaml:"description" doc:"Description set on the tables the sink creates."`
	// Labels are set on the tables the sink creates. Default none.
	Labels map[string]string `yaml:"labels" doc:"Labels set on the tables the sink creates."`
}

// BigQueryMetadataColumns are the names metadata may list.
var BigQueryMetadataColumns = []string{"topic", "partition", "offset", "timestamp", "key"}

var (
	bigQueryProject = regexp.MustCompile(`^[a-z][a-z0-9.:-]{0,127}$`)
	bigQueryDataset = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// Plaintext reports whether the endpoints are an emulator's: no TLS, no
// credentials.
func (b *BigQuerySink) Plaintext() bool {
	if strings.HasPrefix(b.RESTEndpoint, "http://") {
		return true
	}
	host, _, err := net.SplitHostPort(b.Endpoint)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks b; sv is the validator of the sink block.
func (b *BigQuerySink) validate(sv *validator, p *Pipeline) {
	v := sv.sub("bigquery")
	v.required("project", b.Project)
	if b.Project != "" && !bigQueryProject.MatchString(b.Project) {
		v.add("project", fmt.Sprintf("%q is not a Google Cloud project id", b.Project))
	}
	v.required("dataset", b.Dataset)
	if b.Dataset != "" && !bigQueryDataset.MatchString(b.Dataset) {
		v.add("dataset", fmt.Sprintf("%q is not a dataset name: letters, digits and underscores, at most 1024", b.Dataset))
	}
	v.required("table", b.Table)
	v.template("table", b.Table)
	seen := map[string]bool{}
	for i, m := range b.Metadata {
		field := fmt.Sprintf("metadata[%d]", i)
		if seen[m] {
			v.add(field, fmt.Sprintf("%q is listed twice", m))
		}
		seen[m] = true
	}
	if (b.Endpoint == "") != (b.RESTEndpoint == "") {
		v.add("endpoint", "endpoint (gRPC) and rest_endpoint go together (both point at the same emulator or service)")
	}
	if b.Endpoint != "" {
		if _, _, err := net.SplitHostPort(b.Endpoint); err != nil {
			v.add("endpoint", fmt.Sprintf("%q is not host:port", b.Endpoint))
		}
	}
	if b.RESTEndpoint != "" && !strings.HasPrefix(b.RESTEndpoint, "http://") && !strings.HasPrefix(b.RESTEndpoint, "https://") {
		v.add("rest_endpoint", fmt.Sprintf("%q is not an http:// or https:// URL", b.RESTEndpoint))
	}
	if b.CredentialsFile != "" && b.Plaintext() {
		v.add("credentials_file", "is not used with an emulator endpoint (loopback or http://)")
	}
	b.validateTableSpec(v)
	b.validateExactlyOnce(v, p)
	if p.Format.Value != "json" && p.Format.Value != "avro-confluent" {
		sv.add("bigquery", fmt.Sprintf("writes decoded fields: format.value must be json or avro-confluent, not %q", p.Format.Value))
	}
}
