package connector

import (
	"errors"
	"fmt"
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

// BatchError is returned by Sink.Write when some records were rejected as
// bad input while all the others were made durable.
type BatchError struct {
	Failed []*RecordError
}

func (e *BatchError) Error() string {
	if len(e.Failed) == 1 {
		return e.Failed[0].Error()
	}
	return fmt.Sprintf("%d records rejected; first: %v", len(e.Failed), e.Failed[0])
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
