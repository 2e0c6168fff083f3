package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/connector"
)

// RecordDecoder decodes a record's key into KeyFields and its value into
// Fields (and Schema), each with its own format. It is safe for concurrent
// use. Build it with NewDecoder.
//
// Values: json -> the object (numbers as json.Number); string ->
// {"value": text}; avro-confluent -> see AvroConfluent. Keys (KeyFields):
// string -> the text; json -> any JSON value; avro-confluent -> the decoded
// value itself (map[string]any for a record key, string for a string key,
// ...). Raw leaves KeyFields, Fields and Schema untouched.
type RecordDecoder struct {
	key, value bytesDecoder
	registry   *Registry // nil unless a side is avro-confluent
}

// bytesDecoder decodes one side of a record. A *badInput error is bad
// input; any other error is transient.
type bytesDecoder interface {
	decodeBytes(ctx context.Context, b []byte) (any, *connector.Schema, error)
}

// Decode implements Decoder. The key is decoded first; a key that is bad
// input stops there. Empty bytes decode to nil (a missing key, a tombstone
// value); a raw side is left untouched.
func (d *RecordDecoder) Decode(ctx context.Context, rec *connector.Record) error {
	if d.key != nil {
		if len(rec.Key) == 0 {
			rec.KeyFields = nil
		} else {
			v, _, err := d.key.decodeBytes(ctx, rec.Key)
			if err != nil {
				return recordError(rec, "key", err)
			}
			rec.KeyFields = v
		}
	}
	if d.value != nil {
		if rec.Value == nil {
			rec.Fields, rec.Schema = nil, nil
			return nil
		}
		if _, avro := d.value.(*AvroConfluent); avro && len(rec.Value) == 0 {
			return emptyValue(rec)
		}
		v, schema, err := d.value.decodeBytes(ctx, rec.Value)
		if err != nil {
			return recordError(rec, "value", err)
		}
		rec.Fields, rec.Schema = v.(map[string]any), schema
	}
	return nil
}

// VisitFields implements connector.FieldVisitor: the value's top-level
// fields, as Decode would put them in Fields, handed to visit one by one
// without building the map (JSON and Avro records; other formats are
// decoded, then visited). The key is not decoded. Errors are Decode's: a
// *connector.RecordError for bad input, anything else is transient.
func (d *RecordDecoder) VisitFields(ctx context.Context, rec *connector.Record, visit func(name string, value any)) (*connector.Schema, error) {
	if d.value == nil || rec.Value == nil {
		return nil, nil
	}
	switch v := d.value.(type) {
	case jsonDecoder:
		return nil, VisitJSONValue(rec, visit)
	case *AvroConfluent:
		if rec.Value != nil && len(rec.Value) == 0 {
			return nil, emptyValue(rec)
		}
		s, err := v.visitFields(ctx, rec.Value, visit)
		if err != nil {
			return nil, recordError(rec, "value", err)
		}
		return s, nil
	}
	m, s, err := d.value.decodeBytes(ctx, rec.Value)
	if err != nil {
		return nil, recordError(rec, "value", err)
	}
	for k, x := range m.(map[string]any) {
		visit(k, x)
	}
	return s, nil
}

// RegistryLookups is how many calls the schema registry client has made
// (0 without avro-confluent): one per schema id first seen.
func (d *RecordDecoder) RegistryLookups() int64 {
	if d.registry == nil {
		return 0
	}
	return d.registry.Lookups()
}

func sideDecoder(f Format, reg *Registry, readerSchema string, isKey bool) (bytesDecoder, error) {
	switch f {
	case FormatRaw:
		return nil, nil
	case FormatString:
		return stringDecoder{key: isKey}, nil
	case FormatJSON:
		return jsonDecoder{key: isKey}, nil
	case FormatAvroConfluent:
		a, err := NewAvroConfluent(reg, readerSchema)
		if err != nil {
			return nil, err
		}
		if isKey {
			return avroKey{a}, nil
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

// avroKey decodes Avro keys to their plain value (a record key is a
// map[string]any, a string key a string) rather than wrapping them.
type avroKey struct{ *AvroConfluent }

func (k avroKey) decodeBytes(ctx context.Context, b []byte) (any, *connector.Schema, error) {
	v, p, err := k.decodeValue(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	return v, p.schema, nil
}

// String decodes a value as UTF-8 text into Fields["value"]; invalid UTF-8
// is bad input (reason "string"). As a key format, KeyFields is the string.
type String struct{}

var stringSchema = &connector.Schema{Name: "string", Fields: []connector.Field{{Name: wrappedField, Type: connector.TypeString}}}

func (String) Decode(ctx context.Context, rec *connector.Record) error {
	if len(rec.Value) == 0 {
		rec.Fields, rec.Schema = nil, nil
		return nil
	}
	v, s, err := stringDecoder{}.decodeBytes(ctx, rec.Value)
	if err != nil {
		return recordError(rec, "value", err)
	}
	rec.Fields, rec.Schema = v.(map[string]any), s
	return nil
}

type stringDecoder struct{ key bool }

func (d stringDecoder) decodeBytes(_ context.Context, b []byte) (any, *connector.Schema, error) {
	if !utf8.Valid(b) {
		return nil, nil, &badInput{"string", errors.New("not valid UTF-8")}
	}
	if d.key {
		return string(b), nil, nil
	}
	return map[string]any{wrappedField: string(b)}, stringSchema, nil
}

// jsonDecoder decodes JSON with numbers kept as json.Number. A value must
// be an object (as JSON.Decode); a key may be any JSON value.
type jsonDecoder struct{ key bool }

func (d jsonDecoder) decodeBytes(_ context.Context, b []byte) (any, *connector.Schema, error) {
	if !d.key {
		// Values: the hand-written object parser (same values as
		// encoding/json with UseNumber, several times faster).
		m, err := decodeJSONObject(b)
		if err != nil {
			return nil, nil, jsonBadInput(err)
		}
		return m, nil, nil // a JSON null is a nil map: nil Fields
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, &badInput{"json", fmt.Errorf("decoding JSON: %w", err)}
	}
	if dec.More() {
		return nil, nil, &badInput{"json", errors.New("decoding JSON: trailing data after the document")}
	}
	return v, nil, nil
}
