package connector

import "context"

// Decoder fills rec.Fields (and rec.Schema when known) from rec.Value, and
// rec.KeyFields from rec.Key when it decodes keys: the engine runs it on
// every record it reads. Package codec builds one from a pipeline's
// `format:` block.
//
// A *RecordError means the bytes are bad input (routed by on_error, never
// retried). Any other error is transient (a registry that is down) and the
// caller retries, except one marked Permanent (the registry refuses the
// credentials), which retrying cannot fix.
type Decoder interface {
	Decode(ctx context.Context, rec *Record) error
}

// Encoder turns a record's value into bytes for topic (the Kafka sink, the
// load generator).
//
// A *RecordError means rec.Fields cannot be encoded (bad input); an error
// marked Permanent is a configuration problem retrying cannot fix (schema
// rejected as incompatible, not registered with auto_register false, bad
// credentials); any other error is transient (the registry is down) and the
// caller retries.
type Encoder interface {
	Encode(ctx context.Context, topic string, rec *Record) ([]byte, error)
}
