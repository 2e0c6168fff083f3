package connector

// Reconfigurable is implemented by sources whose client properties (for
// Kafka: the consumer properties every Kafka user knows, such as
// max.poll.records or fetch.min.bytes) can be changed while the pipeline
// runs.
//
// SetProperties changes only what later OpenReader calls use: readers that
// are already open keep their settings. The engine applies a change live by
// restarting its readers one by one (each finishes and commits what it read
// before the next one opens), see pipeline.Reconfigure.
type Reconfigurable interface {
	// Properties returns a copy of the properties in force, as configured
	// (names and values as the user wrote them).
	Properties() map[string]any
	// SetProperties merges changes over the current properties; a nil value
	// removes a property (back to the default). When any property is
	// unknown or has a bad value it returns an error naming it and changes
	// nothing: every error of SetProperties is the caller's mistake, never
	// a transient failure.
	SetProperties(changes map[string]any) error
	// MaxPollRecords is the most records one Read returns under the current
	// properties (max.poll.records), or 0 when unset.
	MaxPollRecords() int
}
