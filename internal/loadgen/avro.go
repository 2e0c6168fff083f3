package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// FormatAvro writes values as Avro in Confluent's wire format (a zero
// byte, the schema id, the Avro binary), with a schema registered in the
// registry under <topic>-value.
const FormatAvro = "avro"

// ShopEventSchema is the built-in schema of --format avro: a web shop's
// event with a nested record, an array of records, decimals, a
// timestamp, an enum, a UUID and nullable fields, the shapes that break
// naive Avro pipelines.
const ShopEventSchema = `{
  "type": "record", "name": "ShopEvent", "namespace": "sluice.loadtest",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["page_view", "add_to_cart", "purchase", "search", "login"]}},
    {"name": "session_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "user", "type": {"type": "record", "name": "User", "fields": [
      {"name": "id", "type": "long"},
      {"name": "country", "type": "string"},
      {"name": "email", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
      {"name": "sku", "type": "string"},
      {"name": "quantity", "type": "int"},
      {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}
    ]}}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}`

// avroValues makes random values of one schema and encodes them; the
// encoder is shared (safe for concurrent use), the random source is the
// generator's own.
type avroValues struct {
	schema avro.Schema
	enc    *codec.AvroConfluentEncoder
	topic  string
	// next, when set, is the evolved version written from the record
	// with sequence number nextFrom, or from nextAt into the run.
	next     *avroValues
	nextFrom int64
	nextAt   time.Time
}

// EvolvedField is the field the next version of a schema adds: nullable
// with a default, so the change is backward compatible, and set to 2 in
// records written with it, so a reader can tell the versions apart.
const EvolvedField = "loadtest_version"

// evolveSchema returns the next version of a record schema: the same,
// plus EvolvedField.
func evolveSchema(text string) (string, error) {
	var schema map[string]any
	if err := json.Unmarshal([]byte(text), &schema); err != nil || schema["type"] != "record" {
		return "", errors.New("--schema-evolve: needs a record schema")
	}
	fields, _ := schema["fields"].([]any)
	for _, f := range fields {
		if m, ok := f.(map[string]any); ok && m["name"] == EvolvedField {
			return "", fmt.Errorf("--schema-evolve: the schema already has a field %s", EvolvedField)
		}
	}
	schema["fields"] = append(fields, map[string]any{"name": EvolvedField, "type": []any{"null", "int"}, "default": nil})
	out, err := json.Marshal(schema)
	return string(out), err
}

// newAvroValues parses schemaText (empty: ShopEventSchema), and registers
// it for topic, so that a registry that is down or refuses the schema
// fails the run before it starts.
func newAvroValues(ctx context.Context, registryURL, schemaText, topic string) (*avroValues, error) {
	if schemaText == "" {
		schemaText = ShopEventSchema
	}
	schema, err := avro.Parse(schemaText)
	if err != nil {
		return nil, fmt.Errorf("--schema: parsing the Avro schema: %w", err)
	}
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: registryURL})
	if err != nil {
		return nil, fmt.Errorf("--registry-url: %w", err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, schemaText, codec.SubjectTopic, true)
	if err != nil {
		return nil, fmt.Errorf("--schema: %w", err)
	}
	v := &avroValues{schema: schema, enc: enc, topic: topic}
	// Encoding a first value registers the schema.
	if _, err := v.encode(ctx, rand.New(rand.NewPCG(1, 2)), 0, time.Now()); err != nil {
		return nil, fmt.Errorf("registering the Avro schema for %s at %s: %w", topic, registryURL, err)
	}
	return v, nil
}

// evolve makes v switch to the next version of its schema, registered
// now so that a registry refusing it as incompatible fails the run
// before it starts rather than halfway.
func (v *avroValues) evolve(ctx context.Context, registryURL, schemaText string, fromSeq int64, fromTime time.Time) error {
	if schemaText == "" {
		schemaText = ShopEventSchema
	}
	nextText, err := evolveSchema(schemaText)
	if err != nil {
		return err
	}
	next, err := newAvroValues(ctx, registryURL, nextText, v.topic)
	if err != nil {
		return fmt.Errorf("--schema-evolve: %w", err)
	}
	v.next, v.nextFrom, v.nextAt = next, fromSeq, fromTime
	return nil
}

func (v *avroValues) encode(ctx context.Context, rnd *rand.Rand, seq int64, now time.Time) ([]byte, error) {
	if v.next != nil && (v.nextFrom > 0 && seq >= v.nextFrom || !v.nextAt.IsZero() && !now.Before(v.nextAt)) {
		return v.next.encodeEvolved(ctx, rnd, seq, now)
	}
	return v.encodeValue(ctx, rnd, seq, now, nil)
}

func (v *avroValues) encodeEvolved(ctx context.Context, rnd *rand.Rand, seq int64, now time.Time) ([]byte, error) {
	return v.encodeValue(ctx, rnd, seq, now, map[string]any{EvolvedField: int64(2)})
}

func (v *avroValues) encodeValue(ctx context.Context, rnd *rand.Rand, seq int64, now time.Time, set map[string]any) ([]byte, error) {
	value := randomAvro(rnd, v.schema, 0)
	if m, ok := value.(map[string]any); ok {
		// A top-level id and ts, when the schema has them, say which
		// record this is and when it was made, so a reader can check.
		if f := fieldType(v.schema, "id"); f == avro.Long || f == avro.Int {
			m["id"] = seq
		}
		if _, ok := m["ts"].(time.Time); ok {
			m["ts"] = now
		}
		for k, x := range set {
			m[k] = x
		}
	} else {
		value = map[string]any{"value": value}
	}
	return v.enc.Encode(ctx, v.topic, &connector.Record{Fields: value.(map[string]any)})
}

func fieldType(s avro.Schema, name string) avro.Type {
	rs, ok := s.(*avro.RecordSchema)
	if !ok {
		return ""
	}
	for _, f := range rs.Fields() {
		if f.Name() == name {
			return f.Type().Type()
		}
	}
	return ""
}

// maxAvroDepth bounds recursive schemas: below it, unions take null and
// arrays and maps are empty where they can.
const maxAvroDepth = 4

// randomAvro returns a random value of s, as the Avro decoder produces
// them (records and maps as map[string]any, arrays as []any, decimals as
// *big.Rat, timestamps and dates as time.Time).
func randomAvro(rnd *rand.Rand, s avro.Schema, depth int) any {
	switch s := s.(type) {
	case *avro.RefSchema:
		return randomAvro(rnd, s.Schema(), depth)
	case *avro.RecordSchema:
		m := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			m[f.Name()] = randomAvro(rnd, f.Type(), depth+1)
		}
		return m
	case *avro.ArraySchema:
		n := 1 + rnd.IntN(3)
		if depth >= maxAvroDepth {
			n = 0
		}
		out := make([]any, n)
		for i := range out {
			out[i] = randomAvro(rnd, s.Items(), depth+1)
		}
		return out
	case *avro.MapSchema:
		m := map[string]any{}
		if depth < maxAvroDepth {
			for i := range 1 + rnd.IntN(2) {
				m["k"+strconv.Itoa(i)] = randomAvro(rnd, s.Values(), depth+1)
			}
		}
		return m
	case *avro.EnumSchema:
		return s.Symbols()[rnd.IntN(len(s.Symbols()))]
	case *avro.UnionSchema:
		types := s.Types()
		if depth >= maxAvroDepth {
			for _, t := range types {
				if t.Type() == avro.Null {
					return nil
				}
			}
		}
		return randomAvro(rnd, types[rnd.IntN(len(types))], depth+1)
	case *avro.FixedSchema:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return randomDecimal(rnd, d)
		}
		b := make([]byte, s.Size())
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	case *avro.PrimitiveSchema:
		return randomPrimitive(rnd, s)
	}
	return nil
}

var sampleCountries = []string{"DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"}

func randomPrimitive(rnd *rand.Rand, s *avro.PrimitiveSchema) any {
	if l := s.Logical(); l != nil {
		switch l.Type() {
		case avro.Decimal:
			if d, ok := l.(*avro.DecimalLogicalSchema); ok {
				return randomDecimal(rnd, d)
			}
		case avro.UUID:
			return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rnd.Uint32(), rnd.IntN(1<<16), rnd.IntN(1<<12), 0x8000|rnd.IntN(1<<14), rnd.Uint64()&(1<<48-1))
		case avro.Date, avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return time.Now().Add(-time.Duration(rnd.IntN(86400)) * time.Second).UTC().Truncate(time.Millisecond)
		case avro.TimeMillis, avro.TimeMicros:
			return time.Duration(rnd.IntN(86400)) * time.Second
		}
	}
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		return rnd.IntN(2) == 1
	case avro.Int:
		return int64(rnd.IntN(10000))
	case avro.Long:
		return rnd.Int64N(1 << 40)
	case avro.Float, avro.Double:
		return float64(rnd.IntN(100000)) / 100
	case avro.Bytes:
		b := make([]byte, 8+rnd.IntN(8))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	case avro.String:
		return sampleCountries[rnd.IntN(len(sampleCountries))] + "-" + strconv.Itoa(rnd.IntN(100000))
	}
	return nil
}

// randomDecimal is a decimal that fits the precision, as cents and the
// like: at most 7 integer digits.
func randomDecimal(rnd *rand.Rand, d *avro.DecimalLogicalSchema) *big.Rat {
	digits := min(d.Precision(), 9)
	limit := int64(1)
	for range digits {
		limit *= 10
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale())), nil)
	return new(big.Rat).SetFrac(big.NewInt(rnd.Int64N(limit)), scale)
}
