package codec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/connector"
)

// connector.RecordError reasons of the avro-confluent format.
const (
	// ReasonWireFormat: not Confluent wire format (shorter than the
	// header, magic byte not 0).
	ReasonWireFormat = "wire-format"
	// ReasonEmpty: a 0-byte value that is not null.
	ReasonEmpty = "empty"
	// ReasonUnknownSchema: the registry has no schema with the record's id.
	ReasonUnknownSchema = "unknown-schema"
	// ReasonSchemaParse: the registry's schema for the id is not a valid
	// Avro schema (or not Avro at all).
	ReasonSchemaParse = "schema-parse"
	// ReasonSchemaResolution: the writer schema cannot be read as the
	// pinned reader schema.
	ReasonSchemaResolution = "schema-resolution"
	// ReasonAvroDecode: the bytes do not match the writer schema
	// (truncated, a length or count larger than the input, an index out
	// of range, invalid UTF-8, trailing bytes).
	ReasonAvroDecode = "avro-decode"
)

// wireHeaderLen is the magic byte 0 and the 4-byte big-endian schema id.
const wireHeaderLen = 5

var readerPool = sync.Pool{New: func() any { return new(avroReader) }}

// AvroConfluent decodes Avro in Confluent wire format: a magic byte 0, the
// writer schema's registry id (4 bytes, big-endian), then Avro binary.
//
// Values decode to plain Go values: record -> map[string]any; array ->
// []any; map -> map[string]any; string, enum, uuid -> string; int, long ->
// int64; float, double -> float64; boolean -> bool; bytes, fixed -> []byte;
// null -> nil; decimal (bytes or fixed) -> *big.Rat; date -> time.Time at
// midnight UTC; time-millis/micros -> time.Duration since midnight;
// timestamp-millis/micros and local-timestamp-millis/micros -> time.Time in
// UTC (for local timestamps the zone carries no meaning). A union decodes
// to its branch's value: a nullable union gives the value or nil; for a
// multi-branch union the branch is not recorded, only the value's Go type
// tells it (the portable schema says json for such a field). A value whose
// schema is not a record is put in Fields under "value".
//
// Bad input is a *connector.RecordError with one of the Reason constants.
// Every length and count is checked against the bytes left before
// anything is allocated, nesting is bounded, and trailing bytes after the
// value are an error (they mean the id names the wrong schema). A registry
// that is down, slow or answering 5xx gives a plain, transient error.
//
// Schemas are fetched once per id (see Registry) and compiled once per id
// into a decoder; rec.Schema is the portable schema of the record's writer
// schema (its ID set, Version 0: the registry's by-id lookup does not say
// it), or with a pinned reader schema that schema's (ID 0).
type AvroConfluent struct {
	registry *Registry
	reader   avro.Schema       // nil: decode with each writer schema
	readerPS *connector.Schema // portable form of reader
	programs sync.Map          // schema id -> *avroProgram
}

// avroProgram is what decoding records of one schema id needs.
type avroProgram struct {
	dec    *valueDecoder
	schema *connector.Schema
	wrap   bool  // the schema is not a record: Fields = {"value": v}
	err    error // a *badInput for every record with this id
}

// NewAvroConfluent returns an avro-confluent decoder using registry.
// readerSchema, when not empty, pins the schema values are decoded into.
func NewAvroConfluent(registry *Registry, readerSchema string) (*AvroConfluent, error) {
	a := &AvroConfluent{registry: registry}
	if readerSchema != "" {
		s, err := parseReaderSchema(readerSchema)
		if err != nil {
			return nil, err
		}
		a.reader = s
		a.readerPS = portableSchema(s, 0)
	}
	return a, nil
}

// Decode fills rec.Fields and rec.Schema from rec.Value. A null value is
// a tombstone: Fields and Schema are nil. An empty (0-byte, non-null)
// value is bad input, as Confluent's deserializer has it.
func (a *AvroConfluent) Decode(ctx context.Context, rec *connector.Record) error {
	if rec.Value == nil {
		rec.Fields, rec.Schema = nil, nil
		return nil
	}
	if len(rec.Value) == 0 {
		return emptyValue(rec)
	}
	v, schema, err := a.decodeBytes(ctx, rec.Value)
	if err != nil {
		return recordError(rec, "value", err)
	}
	rec.Fields, rec.Schema = v.(map[string]any), schema
	return nil
}

// emptyValue is the error for a 0-byte value where the wire format needs
// at least its header: null (a tombstone) and empty are not the same.
func emptyValue(rec *connector.Record) error {
	return &connector.RecordError{Record: rec, Reason: ReasonEmpty,
		Err: errors.New("the value is empty (0 bytes, not null): Confluent wire format needs a magic byte and a schema id; only a null value is a tombstone")}
}

// RegistryLookups is how many calls the decoder's registry client made.
func (a *AvroConfluent) RegistryLookups() int64 { return a.registry.Lookups() }

// recordError turns a *badInput into a *connector.RecordError about side
// ("key" or "value") of rec; other errors are transient and returned as
// they are.
func recordError(rec *connector.Record, side string, err error) error {
	var bad *badInput
	if errors.As(err, &bad) {
		return &connector.RecordError{Record: rec, Reason: bad.reason, Err: fmt.Errorf("decoding %s: %w", side, bad.err)}
	}
	return fmt.Errorf("decoding %s of record %s/%d@%d: %w", side, rec.Topic, rec.Partition, rec.Offset, err)
}

// decodeBytes decodes one wire-format payload. Top-level records decode to
// map[string]any; other values are wrapped as {"value": v}.
func (a *AvroConfluent) decodeBytes(ctx context.Context, b []byte) (any, *connector.Schema, error) {
	v, p, err := a.decodeValue(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	if p.wrap {
		v = map[string]any{wrappedField: v}
	}
	return v, p.schema, nil
}

// visitFields decodes a record's top-level fields without building its
// map, and hands them to visit once the whole value is known to be valid.
// Values that are not records are visited as their one field "value".
func (a *AvroConfluent) visitFields(ctx context.Context, b []byte, visit func(string, any)) (*connector.Schema, error) {
	p, err := a.programOf(ctx, b)
	if err != nil {
		return nil, err
	}
	if p.dec.fields == nil { // not a record
		v, err := a.run(p, b)
		if err != nil {
			return nil, err
		}
		visit(wrappedField, v)
		return p.schema, nil
	}
	r := readerPool.Get().(*avroReader)
	defer readerPool.Put(r)
	r.reset(b[wireHeaderLen:])
	defer r.reset(nil)
	p.dec.fields(r)
	if err := a.finish(r, b); err != nil {
		return nil, err
	}
	for _, m := range r.members {
		visit(m.name, m.value)
	}
	return p.schema, nil
}

// decodeValue decodes one wire-format payload to its plain value.
func (a *AvroConfluent) decodeValue(ctx context.Context, b []byte) (any, *avroProgram, error) {
	p, err := a.programOf(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	v, err := a.run(p, b)
	if err != nil {
		return nil, nil, err
	}
	return v, p, nil
}

// run decodes b's body on a pooled reader.
func (a *AvroConfluent) run(p *avroProgram, b []byte) (any, error) {
	r := readerPool.Get().(*avroReader)
	defer readerPool.Put(r)
	r.reset(b[wireHeaderLen:])
	defer r.reset(nil) // drop references to the record's bytes
	v := p.dec.decode(r)
	if err := a.finish(r, b); err != nil {
		return nil, err
	}
	return v, nil
}

// finish checks that the whole body was read and turns a decode failure
// into bad input.
func (a *AvroConfluent) finish(r *avroReader, b []byte) error {
	id := int(binary.BigEndian.Uint32(b[1:5]))
	if r.err == nil && r.remaining() > 0 {
		r.fail("%d bytes left after the value: the bytes do not match schema %d", r.remaining(), id)
	}
	if err := r.result(); err != nil {
		return &badInput{ReasonAvroDecode, fmt.Errorf("schema %d: %w", id, err)}
	}
	return nil
}

// programOf checks the wire-format header of b and returns the program
// of its schema id.
func (a *AvroConfluent) programOf(ctx context.Context, b []byte) (*avroProgram, error) {
	if len(b) < wireHeaderLen {
		return nil, &badInput{ReasonWireFormat, fmt.Errorf("%d bytes is shorter than the 5-byte Confluent header (magic byte, schema id)", len(b))}
	}
	if b[0] != 0 {
		hint := ""
		if b[0] == '{' || b[0] == '[' {
			hint = " (the bytes look like JSON)"
		}
		return nil, &badInput{ReasonWireFormat, fmt.Errorf("magic byte is 0x%02x, want 0x00: not Confluent wire format%s", b[0], hint)}
	}
	return a.program(ctx, int(binary.BigEndian.Uint32(b[1:5])))
}

// program returns the compiled decoder for schema id, building it on first
// use. Failures that are the schema's fault are cached with the program.
func (a *AvroConfluent) program(ctx context.Context, id int) (*avroProgram, error) {
	if p, ok := a.programs.Load(id); ok {
		p := p.(*avroProgram)
		return p, p.err
	}
	writer, err := a.registry.schemaByID(ctx, id)
	if err != nil {
		// Not cached here: the registry remembers what is permanent, and
		// an unknown id is asked again after a while.
		return nil, err
	}
	p := a.compile(id, writer)
	// Two goroutines may compile the same id at once; both results are
	// equal, keep the first.
	actual, _ := a.programs.LoadOrStore(id, p)
	p = actual.(*avroProgram)
	return p, p.err
}

func (a *AvroConfluent) compile(id int, writer avro.Schema) *avroProgram {
	reader, ps := writer, (*connector.Schema)(nil)
	if a.reader != nil {
		if err := avro.NewSchemaCompatibility().Compatible(a.reader, writer); err != nil {
			return &avroProgram{err: &badInput{ReasonSchemaResolution, fmt.Errorf("schema %d cannot be read as the reader schema: %w", id, err)}}
		}
		reader, ps = a.reader, a.readerPS
	}
	dec, err := compileDecoder(writer, reader)
	if err != nil {
		reason := ReasonSchemaParse
		if a.reader != nil {
			reason = ReasonSchemaResolution
		}
		return &avroProgram{err: &badInput{reason, fmt.Errorf("schema %d: %w", id, err)}}
	}
	if ps == nil {
		ps = portableSchema(writer, id)
	}
	_, isRecord := deref(reader).(*avro.RecordSchema)
	return &avroProgram{dec: dec, schema: ps, wrap: !isRecord}
}
