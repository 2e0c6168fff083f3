// Package codec turns record bytes into typed fields and back: raw (bytes
// untouched), string, json, and avro-confluent (Confluent wire format with a
// schema registry). NewDecoder and NewEncoder build them from the `format:`
// block of a pipeline file (Options).
package codec

import (
	"context"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Decoder is the contract the engine calls, connector.Decoder; the codecs
// of this package implement it.
type Decoder = connector.Decoder

// Raw leaves bytes untouched.
type Raw struct{}

func (Raw) Decode(context.Context, *connector.Record) error { return nil }
