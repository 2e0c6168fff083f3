// Package codec turns record bytes into typed fields and back: raw (bytes
// untouched), string, json, and avro-confluent (Confluent wire format with a
// schema registry). NewDecoder and NewEncoder build them from the `format:`
// block of a pipeline file (Options).
package codec

import (
	"context"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Decoder fills rec.Fields (and rec.Schema when known) from rec.Value, and
// rec.KeyFields from rec.Key when it decodes keys.
//
// A *connector.RecordError means the bytes are bad input (routed by
// on_error, never retried). Any other error is transient (a registry that
// is down) and the caller retries, except one marked connector.Permanent
// (the registry refuses the credentials), which retrying cannot fix.
type Decoder interface {
	Decode(ctx context.Context, rec *connector.Record) error
}

// Raw leaves bytes untouched.
type Raw struct{}

func (Raw) Decode(context.Context, *connector.Record) error { return nil }
