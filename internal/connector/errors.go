package connector

import (
	"errors"
	"fmt"
	"strings"
)

// RecordError is a problem with one record's content (bad input): it is
// never retried, and goes where the pipeline's on_error says.
type RecordError struct {
	Record *Record
	Reason string // short machine-friendly kind, e.g. "decode", "schema", "type"
	Err    error
}

func (e *RecordError) Error() string {
	r := e.Record
	if r == nil {
		return fmt.Sprintf("%s: %v", e.Reason, e.Err)
	}
	return fmt.Sprintf("record %s/%d@%d: %s: %v", r.Topic, r.Partition, r.Offset, e.Reason, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// BatchError is returned by Sink.Write when the batch was not written
// whole. It says what happened to each record; every record of the batch is
// in exactly one of these classes:
//
//   - Failed: rejected as bad input, each with its reason. Never retried:
//     the engine routes them by on_error, and acks them only once routed.
//   - NotWritten: not durable, because of Cause. The engine writes them
//     again (a new Write holding only them): at once when Cause is nil
//     (the sink stopped short on purpose, as an exactly-once sink does so
//     that no stored offset passes a record on_error has not handled yet),
//     after a backoff when Cause is transient, and never when Cause is
//     Permanent (the pipeline stops).
//   - Released: not written and not to be retried by this consumer,
//     because its source gave up the record's partition (a rebalance moved
//     it; the new owner reads it again). Not counted as written.
//   - any other record is durable.
//
// "One record failed" never implies "the rest is durable": a sink that
// cannot tell what became of a record lists it in NotWritten (or returns a
// plain error: then nothing of the batch may be assumed durable).
type BatchError struct {
	Failed     []*RecordError
	NotWritten []*Record
	Released   []*Record
	Cause      error
}

func (e *BatchError) Error() string {
	var parts []string
	switch len(e.Failed) {
	case 0:
	case 1:
		parts = append(parts, e.Failed[0].Error())
	default:
		parts = append(parts, fmt.Sprintf("%d records rejected; first: %v", len(e.Failed), e.Failed[0]))
	}
	if len(e.NotWritten) > 0 {
		s := fmt.Sprintf("%d records not written", len(e.NotWritten))
		if e.Cause != nil {
			s += ": " + e.Cause.Error()
		}
		parts = append(parts, s)
	}
	if len(e.Released) > 0 {
		parts = append(parts, fmt.Sprintf("%d records released to their partition's new owner", len(e.Released)))
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns Cause, so that IsPermanent sees a permanent cause.
func (e *BatchError) Unwrap() error { return e.Cause }

// Durable returns the records of batch that e leaves durable, in batch
// order. A nil e means every record is durable.
func (e *BatchError) Durable(batch []*Record) []*Record {
	if e == nil {
		return batch
	}
	n := len(e.Failed) + len(e.NotWritten) + len(e.Released)
	if n == 0 {
		return batch
	}
	other := make(map[*Record]struct{}, n)
	for _, f := range e.Failed {
		other[f.Record] = struct{}{}
	}
	for _, r := range e.NotWritten {
		other[r] = struct{}{}
	}
	for _, r := range e.Released {
		other[r] = struct{}{}
	}
	durable := make([]*Record, 0, len(batch)-min(n, len(batch)))
	for _, r := range batch {
		if _, ok := other[r]; !ok {
			durable = append(durable, r)
		}
	}
	return durable
}

// Rejected builds the error of a write that made every record durable
// except bad: nil when bad is empty.
func Rejected(bad []*RecordError) error {
	if len(bad) == 0 {
		return nil
	}
	return &BatchError{Failed: bad}
}

// Without returns the records of batch that are not in drop, in order.
func Without(batch []*Record, drop []*RecordError) []*Record {
	if len(drop) == 0 {
		return batch
	}
	skip := make(map[*Record]struct{}, len(drop))
	for _, f := range drop {
		skip[f.Record] = struct{}{}
	}
	out := make([]*Record, 0, len(batch))
	for _, r := range batch {
		if _, ok := skip[r]; !ok {
			out = append(out, r)
		}
	}
	return out
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix (bad configuration,
// permission denied, table missing without create_table): the pipeline
// stops with it instead of retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
