package codec

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/internal/connector"
)

// JSON decodes values that are JSON objects. Numbers are kept as
// json.Number so integers survive exactly; sinks convert to their column
// types. A value of null decodes to nil Fields, like a tombstone; anything
// but whitespace after the object is bad input.
type JSON struct{}

func (JSON) Decode(_ context.Context, rec *connector.Record) error {
	if rec.Value == nil {
		rec.Fields = nil // a tombstone
		return nil
	}
	m, err := decodeJSONObject(rec.Value)
	if err != nil {
		return &connector.RecordError{Record: rec, Reason: "json", Err: fmt.Errorf("decoding JSON value: %w", err)}
	}
	rec.Fields = m
	return nil
}
