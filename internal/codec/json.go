package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/sluice-dev/sluice/internal/connector"
)

// JSON decodes values that are JSON objects. Numbers are kept as
// json.Number so integers survive exactly; sinks convert to their column
// types.
type JSON struct{}

func (JSON) Decode(_ context.Context, rec *connector.Record) error {
	if len(rec.Value) == 0 {
		rec.Fields = nil // a tombstone
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Value))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return &connector.RecordError{Record: rec, Reason: "json", Err: fmt.Errorf("decoding JSON value: %w", err)}
	}
	if dec.More() {
		return &connector.RecordError{Record: rec, Reason: "json", Err: fmt.Errorf("decoding JSON value: trailing data after the object")}
	}
	rec.Fields = m
	return nil
}
