package config

import "time"

// Format says how keys and values are encoded.
type Format struct {
	Key             string          `yaml:"key" default:"raw" enum:"raw|string|json|avro-confluent" doc:"Encoding of record keys."`
	Value           string          `yaml:"value" default:"raw" enum:"raw|string|json|avro-confluent" doc:"Encoding of record values; json or avro-confluent to use fields (transforms, SQL columns, BigQuery)."`
	SchemaRegistry  *SchemaRegistry `yaml:"schema_registry" doc:"A Confluent-compatible schema registry; required for avro-confluent."`
	ReaderSchema    string          `yaml:"reader_schema" advanced:"true" doc:"Pin an Avro reader schema (JSON): records resolve to it."`
	SubjectStrategy string          `yaml:"subject_strategy" default:"topic" enum:"topic|record|topic-record" advanced:"true" doc:"How a schema's registry subject is named when encoding."`
	AutoRegister    *bool           `yaml:"auto_register" default:"true" advanced:"true" doc:"Register schema under its subject when encoding (false: it must be registered already)."`
	// Schema is the Avro schema used to encode (kafka sink, load generator).
	Schema string `yaml:"schema" doc:"The Avro schema (JSON) values are encoded with (kafka sink format)."`
}

// SchemaRegistry is a Confluent-compatible schema registry.
type SchemaRegistry struct {
	URL         string        `yaml:"url" doc:"The registry's URL (required)." example:"http://localhost:8081"`
	Username    string        `yaml:"username" doc:"Basic auth user."`
	Password    string        `yaml:"password" secret:"true" doc:"Basic auth password." example:"${REGISTRY_PASSWORD}"`
	BearerToken string        `yaml:"bearer_token" secret:"true" doc:"A bearer token, instead of basic auth." example:"${REGISTRY_TOKEN}"`
	Timeout     time.Duration `yaml:"timeout" default:"10s" advanced:"true" doc:"Bound on each registry call."`
	TLS         *TLS          `yaml:"tls" doc:"TLS to the registry."`
}

var formats = []string{"raw", "string", "json", "avro-confluent"}

func (f *Format) validate(v *validator) {
	if (f.Key == "avro-confluent" || f.Value == "avro-confluent") && (f.SchemaRegistry == nil || f.SchemaRegistry.URL == "") {
		v.add("schema_registry.url", "is required for avro-confluent")
	}
	if r := f.SchemaRegistry; r != nil {
		// The same rules the registry client applies when run builds it.
		if r.Username != "" && r.BearerToken != "" {
			v.add("schema_registry.bearer_token", "set either username/password or bearer_token, not both")
		}
		if r.Password != "" && r.Username == "" {
			v.add("schema_registry.username", "is required with password")
		}
		if r.Timeout < 0 {
			v.add("schema_registry.timeout", "must not be negative")
		}
		if r.TLS != nil {
			r.TLS.validate(v.sub("schema_registry.tls"))
		}
	}
}
