package config

import "time"

// Format says how keys and values are encoded.
type Format struct {
	Key             string          `yaml:"key"`   // raw (default) | string | json | avro-confluent
	Value           string          `yaml:"value"` // raw (default) | string | json | avro-confluent
	SchemaRegistry  *SchemaRegistry `yaml:"schema_registry"`
	ReaderSchema    string          `yaml:"reader_schema"`
	SubjectStrategy string          `yaml:"subject_strategy"` // topic (default) | record | topic-record
	AutoRegister    *bool           `yaml:"auto_register"`    // default true
	// Schema is the Avro schema used to encode (kafka sink, load generator).
	Schema string `yaml:"schema"`
}

// SchemaRegistry is a Confluent-compatible schema registry.
type SchemaRegistry struct {
	URL         string        `yaml:"url"`
	Username    string        `yaml:"username"`
	Password    string        `yaml:"password" secret:"true"`
	BearerToken string        `yaml:"bearer_token" secret:"true"`
	Timeout     time.Duration `yaml:"timeout"` // per registry call; default 10s
	TLS         *TLS          `yaml:"tls"`
}

var formats = []string{"raw", "string", "json", "avro-confluent"}

func (f *Format) applyDefaults() {
	if f.Key == "" {
		f.Key = "raw"
	}
	if f.Value == "" {
		f.Value = "raw"
	}
	if f.SubjectStrategy == "" {
		f.SubjectStrategy = "topic"
	}
}

func (f *Format) validate(v *validator) {
	v.oneOf("key", f.Key, formats...)
	v.oneOf("value", f.Value, formats...)
	v.oneOf("subject_strategy", f.SubjectStrategy, "topic", "record", "topic-record")
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
