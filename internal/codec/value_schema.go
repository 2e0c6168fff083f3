package codec

import (
	"context"

	"github.com/sluice-dev/sluice/internal/connector"
)

// ValueSchema returns the portable schema of rec's value without decoding
// it: for avro-confluent values, that of the schema id in the wire header
// (fetched and compiled once per id); nil for formats without one. A
// sink that visits values itself (connector.FieldVisitorSink) learns the
// schema, and so its table, before it visits. Errors are Decode's: a
// *connector.RecordError for bad input (not wire format, an unknown id),
// anything else is transient.
func (d *RecordDecoder) ValueSchema(ctx context.Context, rec *connector.Record) (*connector.Schema, error) {
	a, ok := d.value.(*AvroConfluent)
	if !ok || rec.Value == nil {
		return nil, nil
	}
	if len(rec.Value) == 0 {
		return nil, emptyValue(rec)
	}
	p, err := a.programOf(ctx, rec.Value)
	if err != nil {
		return nil, recordError(rec, "value", err)
	}
	return p.schema, nil
}
