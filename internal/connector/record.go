// Package connector holds the contracts between the pipeline engine and the
// sources and sinks it moves records between. The engine imports only this
// package; concrete connectors are wired in cmd/sluice.
package connector

import "time"

// Header is one Kafka record header (or Pub/Sub attribute).
type Header struct {
	Key   string
	Value []byte
}

// Record is one event moving through a pipeline.
//
// Key and Value are the bytes as they arrived; Fields is the decoded value
// (nil for the raw format). Sinks must not modify a Record: after a failed
// write the same Record may be offered again, or to the dead-letter
// destination.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	// TimestampType says what Timestamp is as the source gave it; the
	// pipeline's timestamp policy may replace Timestamp (and sets
	// TimestampType to what it chose).
	TimestampType TimestampType
	Key           []byte
	Value         []byte
	Headers       []Header

	// Fields is the decoded value: map[string]any for JSON and Avro records
	// (Avro records keep their field order in Schema when known), nil for raw.
	Fields map[string]any
	// KeyFields is the decoded key when the key format is not raw.
	KeyFields any
	// Schema describes Fields when the codec knows it (Avro); nil otherwise.
	Schema *Schema
	// Reshaped, when set, is the value as the transforms left it, already
	// written as a JSON object by their fast path, which never decoded it
	// (Fields is then nil). Only a sink encoding JSON is given such
	// records; its JSON encoder writes Reshaped as it is.
	Reshaped []byte

	// Origin is opaque bookkeeping of the source that produced the record
	// (for the Kafka source, its partition tracker); sinks ignore it.
	Origin any

	// Slot, 0 to Slots-1, is set by the engine when the pipeline has
	// parallelism: a hash of the key as read (before transforms), or of
	// the topic and partition for a record without a key or with by:
	// partition. One worker writes all the records of a (topic,
	// partition, slot), in offset order, whatever the number of workers,
	// so an exactly-once sink can store and deduplicate offsets per slot.
	// Zero without parallelism.
	Slot int
}

// TimestampType is what a record's Timestamp means.
type TimestampType int8

const (
	TimestampUnknown        TimestampType = iota // not said by the source
	TimestampCreateTime                          // Kafka CreateTime: set by the producer
	TimestampLogAppendTime                       // Kafka LogAppendTime: set by the broker on append
	TimestampPublishTime                         // Pub/Sub publish time: set by the service
	TimestampProcessingTime                      // when Sluice read the record
	TimestampEventField                          // taken from a field of the decoded value
)

// Slots is the number of slots records are spread over with parallelism:
// fixed, so that the number of workers may change between runs while
// offsets stored per slot stay valid.
const Slots = 256

// Size is the number of payload bytes the record holds; it is what
// in-flight byte limits count.
func (r *Record) Size() int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// HeaderValue returns the value of the last header named key, or nil.
func (r *Record) HeaderValue(key string) []byte {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value
		}
	}
	return nil
}
