package codec

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// Format is how a key or value is encoded.
type Format string

const (
	FormatRaw           Format = "raw"            // bytes untouched (the default)
	FormatString        Format = "string"         // UTF-8 text
	FormatJSON          Format = "json"           // a JSON document (an object, for values)
	FormatAvroConfluent Format = "avro-confluent" // Avro in Confluent wire format, schemas in a registry
)

// SubjectStrategy names the registry subject an encoder registers its
// schema under, as Confluent's serializers do.
type SubjectStrategy string

const (
	SubjectTopic       SubjectStrategy = "topic"        // <topic>-value (the default)
	SubjectRecord      SubjectStrategy = "record"       // <full record name>
	SubjectTopicRecord SubjectStrategy = "topic-record" // <topic>-<full record name>
)

// defaultRegistryTimeout bounds one registry call when Timeout is unset.
const defaultRegistryTimeout = 10 * time.Second

// Options is the `format:` block of a pipeline file:
//
//	format:
//	  key: raw            # raw | string | json | avro-confluent
//	  value: avro-confluent
//	  schema_registry: {url: http://127.0.0.1:8081, username: u, password: "${P}",
//	                    bearer_token: "${T}", timeout: 10s,
//	                    tls: {ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false}}
//	  reader_schema: '{"type":"record",...}'   # optional, pins the value reader schema
//	  subject_strategy: topic                    # encoding: topic | record | topic-record
//	  auto_register: true                        # encoding: register the schema, or only look it up
type Options struct {
	// Key is the key format; "" means raw.
	Key Format `yaml:"key"`
	// Value is the value format; "" means raw.
	Value Format `yaml:"value"`
	// SchemaRegistry is required when Key or Value is avro-confluent.
	SchemaRegistry RegistryOptions `yaml:"schema_registry"`
	// ReaderSchema, when set, is the Avro schema every value is decoded
	// into, resolving each record's writer schema to it (fields added with
	// defaults, removed fields dropped, types promoted). Records whose
	// writer schema cannot be resolved to it are bad input
	// ("schema-resolution"). Empty decodes each record with its own writer
	// schema.
	ReaderSchema string `yaml:"reader_schema"`
	// SubjectStrategy is how encoders name their subject; "" means topic.
	SubjectStrategy SubjectStrategy `yaml:"subject_strategy"`
	// AutoRegister, for encoders: register the schema under its subject
	// (true, Confluent's auto.register.schemas default), or only look up
	// the id it already has there (false). nil means true.
	AutoRegister *bool `yaml:"auto_register"`
}

// RegistryOptions locates and authenticates to a schema registry.
type RegistryOptions struct {
	// URL is the registry's base URL; several may be given separated by
	// commas, tried in order on connection errors. A URL without a scheme
	// gets http://.
	URL string `yaml:"url"`
	// Username and Password are HTTP basic auth (Confluent Cloud's API key
	// and secret).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// BearerToken is sent as "Authorization: Bearer <token>"; exclusive
	// with Username.
	BearerToken string `yaml:"bearer_token"`
	// Timeout bounds each registry call; 0 means 10s.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures https:// URLs.
	TLS TLSOptions `yaml:"tls"`
}

// TLSOptions configures TLS to the registry.
type TLSOptions struct {
	// CAFile is a PEM file of CAs to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify disables server certificate checks: tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// FieldError is a problem with one option, named by its path inside the
// format block (e.g. "schema_registry.url").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return "format." + e.Field + ": " + e.Problem }

func (o Options) autoRegister() bool { return o.AutoRegister == nil || *o.AutoRegister }

func (o Options) strategy() SubjectStrategy {
	if o.SubjectStrategy == "" {
		return SubjectTopic
	}
	return o.SubjectStrategy
}

func formatOrRaw(f Format) Format {
	if f == "" {
		return FormatRaw
	}
	return f
}

// Validate reports every problem in o, each a *FieldError, joined.
func (o Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	for _, side := range []struct {
		name string
		f    Format
	}{{"key", o.Key}, {"value", o.Value}} {
		switch formatOrRaw(side.f) {
		case FormatRaw, FormatString, FormatJSON, FormatAvroConfluent:
		default:
			bad(side.name, "unknown format %q (want raw, string, json or avro-confluent)", side.f)
		}
	}
	avroUsed := o.Key == FormatAvroConfluent || o.Value == FormatAvroConfluent
	if avroUsed || o.SchemaRegistry != (RegistryOptions{}) {
		if err := o.SchemaRegistry.validate("schema_registry"); err != nil {
			errs = append(errs, err)
		}
	}
	if o.ReaderSchema != "" {
		if o.Value != FormatAvroConfluent {
			bad("reader_schema", "only applies to value: avro-confluent")
		} else if _, err := parseSchema(o.ReaderSchema, nil); err != nil {
			bad("reader_schema", "%v", err)
		}
	}
	switch o.strategy() {
	case SubjectTopic, SubjectRecord, SubjectTopicRecord:
	default:
		bad("subject_strategy", "unknown strategy %q (want topic, record or topic-record)", o.SubjectStrategy)
	}
	return errors.Join(errs...)
}

func (o RegistryOptions) validate(prefix string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: prefix + "." + field, Problem: fmt.Sprintf(format, args...)})
	}
	urls := o.urls()
	if len(urls) == 0 {
		bad("url", "required for avro-confluent")
	}
	for _, u := range urls {
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		p, err := url.Parse(u)
		switch {
		case err != nil:
			bad("url", "%v", err)
		case p.Scheme != "http" && p.Scheme != "https":
			bad("url", "scheme %q is not http or https", p.Scheme)
		case p.Host == "":
			bad("url", "%q has no host", u)
		}
	}
	if o.Username != "" && o.BearerToken != "" {
		bad("bearer_token", "set either username/password or bearer_token, not both")
	}
	if o.Password != "" && o.Username == "" {
		bad("username", "required with password")
	}
	if o.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		bad("tls.key_file", "cert_file and key_file go together")
	}
	return errors.Join(errs...)
}

// NewDecoder returns the decoder for o's key and value formats. Both sides
// share one registry client when either is avro-confluent.
func NewDecoder(o Options) (*RecordDecoder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := &RecordDecoder{}
	if o.Key == FormatAvroConfluent || o.Value == FormatAvroConfluent {
		reg, err := NewRegistry(o.SchemaRegistry)
		if err != nil {
			return nil, err
		}
		d.registry = reg
	}
	var err error
	if d.key, err = sideDecoder(formatOrRaw(o.Key), d.registry, "", true); err != nil {
		return nil, err
	}
	if d.value, err = sideDecoder(formatOrRaw(o.Value), d.registry, o.ReaderSchema, false); err != nil {
		return nil, err
	}
	return d, nil
}

// NewEncoder returns the encoder for o's value format. avroSchema is the
// Avro schema text values are written with (the pipeline file's
// format.schema, which errors name); it is required for avro-confluent and
// ignored otherwise.
func NewEncoder(o Options, avroSchema string) (Encoder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch formatOrRaw(o.Value) {
	case FormatRaw:
		return RawEncoder{}, nil
	case FormatString:
		return StringEncoder{}, nil
	case FormatJSON:
		return JSONEncoder{}, nil
	}
	if strings.TrimSpace(avroSchema) == "" {
		return nil, &FieldError{Field: "schema", Problem: "an Avro schema is required to encode values as avro-confluent"}
	}
	reg, err := NewRegistry(o.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	return NewAvroConfluentEncoder(reg, avroSchema, o.strategy(), o.autoRegister())
}

// parseReaderSchema parses a pinned reader schema.
func parseReaderSchema(text string) (avro.Schema, error) {
	s, err := parseSchema(text, nil)
	if err != nil {
		return nil, &FieldError{Field: "reader_schema", Problem: err.Error()}
	}
	return s, nil
}
