package codec

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Encoder is the contract its users call, connector.Encoder; the encoders
// of this package implement it.
type Encoder = connector.Encoder

// RawEncoder returns rec.Value unchanged.
type RawEncoder struct{}

func (RawEncoder) Encode(_ context.Context, _ string, rec *connector.Record) ([]byte, error) {
	return rec.Value, nil
}

// StringEncoder writes Fields["value"] when it is a string (what the
// string decoder produces), else rec.Value unchanged.
type StringEncoder struct{}

func (StringEncoder) Encode(_ context.Context, _ string, rec *connector.Record) ([]byte, error) {
	if s, ok := rec.Fields[wrappedField].(string); ok {
		return []byte(s), nil
	}
	return rec.Value, nil
}

// AvroConfluentEncoder writes rec.Fields as Avro in Confluent wire format
// with one schema, registered (or looked up) under the subject its
// strategy names, once per subject.
//
// Fields is read as the decoder produces it, and leniently as other codecs
// produce it: integral float64 and json.Number for ints, json.Number for
// floats, strings for bytes, RFC 3339 strings for timestamps, decimal
// strings and float64 for decimals. A missing field takes its default,
// else null when its type is nullable. Keys not in the schema are ignored.
// For a union the value picks the first branch that takes it as it is,
// then the first that takes it converted. A schema that is not a record
// is written from Fields["value"]. Nil Fields (a tombstone) encode to nil.
type AvroConfluentEncoder struct {
	registry     *Registry
	text         string
	recordName   string // full name of a named schema, for the record strategies
	enc          *valueEncoder
	wrap         bool
	strategy     SubjectStrategy
	autoRegister bool
	// ids caches the schema id by topic, so that encoding a record builds
	// no subject name and no registry cache key (the schema text) at all.
	ids sync.Map // topic -> int
}

// NewAvroConfluentEncoder returns an encoder writing values with the Avro
// schema text, under subjects named by strategy.
func NewAvroConfluentEncoder(registry *Registry, schema string, strategy SubjectStrategy, autoRegister bool) (*AvroConfluentEncoder, error) {
	parsed, err := parseSchema(schema, nil)
	if err != nil {
		return nil, &FieldError{Field: "schema", Problem: "parsing the Avro schema to encode with: " + err.Error()}
	}
	enc, err := compileEncoder(parsed)
	if err != nil {
		return nil, &FieldError{Field: "schema", Problem: "compiling the Avro schema to encode with: " + err.Error()}
	}
	e := &AvroConfluentEncoder{registry: registry, text: schema, enc: enc, strategy: strategy, autoRegister: autoRegister}
	if strategy == "" {
		e.strategy = SubjectTopic
	}
	if n, ok := deref(parsed).(avro.NamedSchema); ok {
		e.recordName = n.FullName()
	}
	_, isRecord := deref(parsed).(*avro.RecordSchema)
	e.wrap = !isRecord
	if e.recordName == "" && e.strategy != SubjectTopic {
		return nil, &FieldError{Field: "subject_strategy", Problem: fmt.Sprintf("%s needs a named schema (a record), the schema is %s", e.strategy, parsed.Type())}
	}
	return e, nil
}

// Subject is the subject the schema is registered under for topic.
func (e *AvroConfluentEncoder) Subject(topic string) string {
	switch e.strategy {
	case SubjectRecord:
		return e.recordName
	case SubjectTopicRecord:
		return topic + "-" + e.recordName
	}
	return topic + "-value"
}

func (e *AvroConfluentEncoder) schemaID(ctx context.Context, topic string) (int, error) {
	if id, ok := e.ids.Load(topic); ok {
		return id.(int), nil
	}
	id, err := e.registry.subjectID(ctx, e.Subject(topic), e.text, e.autoRegister)
	if err != nil {
		return 0, err
	}
	e.ids.Store(topic, id)
	return id, nil
}

// RegistryLookups is how many calls the encoder's registry client made:
// one per subject, whatever the number of records.
func (e *AvroConfluentEncoder) RegistryLookups() int64 { return e.registry.Lookups() }

func (e *AvroConfluentEncoder) Encode(ctx context.Context, topic string, rec *connector.Record) ([]byte, error) {
	if rec.Fields == nil {
		return nil, nil
	}
	id, err := e.schemaID(ctx, topic)
	if err != nil {
		return nil, err
	}
	w := &avroWriter{buf: make([]byte, wireHeaderLen, 256)}
	binary.BigEndian.PutUint32(w.buf[1:], uint32(id))
	var v any = rec.Fields
	if e.wrap {
		v = rec.Fields[wrappedField]
	}
	if err := e.enc.encode(w, v, lenient); err != nil {
		return nil, &connector.RecordError{Record: rec, Reason: "avro-encode", Err: fmt.Errorf("encoding value: %w", err)}
	}
	return w.buf, nil
}
