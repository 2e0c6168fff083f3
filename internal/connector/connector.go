package connector

import (
	"context"
	"time"
)

// Source produces records. Each Reader it opens is one member of the
// source's consumer group (for Kafka) or one subscriber (for Pub/Sub); the
// engine opens Consumers() readers and may open and close more at run time.
type Source interface {
	// OpenReader starts one reader named member. The context governs only
	// the opening; the reader lives until Close.
	OpenReader(ctx context.Context, member string) (Reader, error)
}

// Reader is one consumer.
//
// Read and Ack may run concurrently with each other; Read is never called
// concurrently with itself. Close is called once, after the last Read has
// returned; it must commit whatever has been acked.
type Reader interface {
	// Read blocks until at least one record is available or ctx is done,
	// and returns at most max records (max <= 0: whatever is buffered).
	// On ctx done it returns what it has (possibly nothing) and ctx.Err().
	Read(ctx context.Context, max int) ([]*Record, error)
	// Ack reports that records are done: durable in the sink, or routed to
	// on_error. Records may be acked in any order; the reader commits a
	// position only when everything before it is acked, and never for a
	// partition it no longer owns.
	Ack(records []*Record)
	// Close commits what is acked and leaves the group.
	Close(ctx context.Context) error
}

// Describer is implemented by sources that can say what they read, for
// errors and logs: "pubsub subscription projects/p/subscriptions/s".
type Describer interface {
	Describe() string
}

// Pauser is implemented by readers that can stop fetching (not merely stop
// being read), used when a merge needs every consumer quiet.
type Pauser interface {
	Pause()
	Resume()
}

// Leaver is implemented by readers whose Close may keep their place in the
// group: a Kafka static member (group.instance.id) does not leave on
// Close, so that a restart gets its partitions back without a rebalance.
// LeaveOnClose, called before Close when the reader is removed for good,
// makes Close leave, so the group reassigns its partitions at once
// instead of after the session timeout.
type Leaver interface {
	LeaveOnClose()
}

// Assignment describes what a Reader currently owns, for status pages.
type Assignment struct {
	Topic      string
	Partitions []int32
}

// AssignmentReporter is implemented by readers that can tell what they own.
type AssignmentReporter interface {
	Assigned() []Assignment
}

// Warner is implemented by readers that can tell what keeps them from
// reading, without it being an error (a source topic that does not exist
// yet), for status pages.
type Warner interface {
	Warnings() []string
}

// WaitReporter is implemented by readers that can own nothing for a while
// (a group member while the group has more members than partitions, or
// during a rebalance): WaitingSince is when it last had none, zero while
// it owns some.
type WaitReporter interface {
	WaitingSince() time.Time
}

// Finisher is implemented by sources whose read is bounded (Kafka's
// stop_at): Finished is closed once everything the bound covers has been
// read and acked (or the bound's time is up). The engine then drains, as
// on a signal, and its Run returns nil.
type Finisher interface {
	Finished() <-chan struct{}
}

// LagReporter is implemented by readers that know their lag per partition.
type LagReporter interface {
	Lag() map[string]map[int32]int64
}

// LagAgeReporter is implemented by readers that know how long their
// oldest unfinished record has waited (lag in time rather than records).
type LagAgeReporter interface {
	LagAge() time.Duration
}

// Sink writes records durably.
//
// The contract every sink keeps (internal/connector/conformance states it
// as tests, run against each sink's real server):
//
//   - Write returns nil only when every record of batch is durable: a SQL
//     transaction committed, every Kafka produce acked, every BigQuery
//     append answered, the file flushed (and synced when asked).
//   - A *BatchError says, record by record, what happened: rejected as
//     bad input (with the reason), not written (retried), released to
//     another consumer, or durable. Any other error means nothing of the
//     batch may be assumed durable: the engine writes the whole batch
//     again (or stops, for a Permanent error).
//   - Retries are safe: writing a record again after an error may
//     duplicate it in at-least-once mode, never in exactly-once mode
//     (where the sink stores the source offsets with the data and skips
//     what it already holds).
//   - A sink that stores source offsets (exactly-once) never stores one
//     past a record it rejected in the same write: it reports the rest of
//     that record's partition NotWritten, so on_error handles the record
//     before any offset passes it.
//   - Cancellation: when ctx ends, Write returns promptly with an error;
//     what it already made durable may stay (a retry must not duplicate it
//     in exactly-once mode), nothing else is claimed.
//
// Write may be called concurrently by several consumers of a pipeline.
type Sink interface {
	Write(ctx context.Context, batch []*Record) error
	// Close makes everything acknowledged so far durable and releases the
	// sink's connections.
	Close(ctx context.Context) error
}

// Preparer is implemented by sinks with per-batch work that needs no I/O,
// such as turning records into table rows. The engine prepares a
// consumer's next batch on its own goroutine while the previous batch is
// being written, so that work overlaps the destination's, and hands the
// result to WritePrepared (also on retries). WritePrepared(ctx, b,
// Prepare(b)) must do what Write(ctx, b) does; a nil prepared value means
// "prepare in WritePrepared" (the sink was not ready to prepare yet).
type Preparer interface {
	Prepare(batch []*Record) any
	WritePrepared(ctx context.Context, batch []*Record, prepared any) error
}

// SpreadWriter is implemented by sinks whose write of a batch commits the
// batch's source offsets, per partition, in the same transaction (the
// Kafka sink with delivery: exactly_once). Such an offset must not pass a
// record another worker has not written, so when SpreadsBatches is true
// and the pipeline has several workers by key or by partition, the engine
// keeps each consumer's batches whole, written one after the other by one
// writer, and the sink spreads a batch over the workers itself:
// WriteSpread(ctx, batch, workers) does what Write does, the records of
// each worker (Record.Slot modulo workers) written concurrently, in batch
// order, within the one transaction. A retry writes the whole batch again.
type SpreadWriter interface {
	SpreadsBatches() bool
	WriteSpread(ctx context.Context, batch []*Record, workers int) error
}

// Transformer changes or drops a decoded record between decode and the
// sink (the pipeline's transforms). It may change the record's Fields,
// Schema, Key, KeyFields and Headers, never its Value bytes. keep false
// means the record is dropped: the engine acks it without writing it. A
// *RecordError is the record's problem, routed by on_error; the record's
// key and headers are then as they arrived. It is called from every
// consumer at once.
type Transformer interface {
	Transform(r *Record) (keep bool, err error)
}

// RouteReporter is implemented by a sink over several named sinks (a
// pipeline's route): the records each has made durable, for status.
type RouteReporter interface {
	Written() map[string]int64
}

// FieldVisitor hands a record's decoded top-level fields to visit one by
// one, without building its Fields map, and returns its schema when the
// format has one (the Avro decoder). Bad input is a *RecordError;
// other errors are transient.
type FieldVisitor interface {
	VisitFields(ctx context.Context, rec *Record, visit func(name string, value any)) (*Schema, error)
}

// FieldVisitorSink is a Sink that visits values itself with the
// FieldVisitor it was built with, to skip building a map per record (the
// SQL sinks place each field straight into its column). When VisitsFields
// is true the engine's decoder leaves values undecoded (Fields nil) and the
// sink reports bad ones as bad records, with the decoder's error.
type FieldVisitorSink interface {
	VisitsFields() bool
}

// OffsetStore is implemented by sinks that keep source offsets in their own
// transaction (exactly-once). The Kafka source consults it on every
// partition assignment and resumes from what it returns.
type OffsetStore interface {
	// LoadOffsets returns the next offset to read for each partition of
	// topic the store knows about.
	LoadOffsets(ctx context.Context, topic string, partitions []int32) (map[int32]int64, error)
}

// DeadLetter receives records that cannot be decoded or written.
type DeadLetter interface {
	// Send stores rec with the reason it was rejected; it returns nil only
	// when the dead-letter destination holds it durably.
	Send(ctx context.Context, rec *Record, reason error) error
	Close(ctx context.Context) error
}
