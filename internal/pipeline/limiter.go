package pipeline

import (
	"context"
	"sync"
)

// inFlightLimiter caps the records and bytes a pipeline has read but not
// yet acked. Consumers acquire after each read and stop reading while the
// cap is reached, so the Kafka client's own buffers fill and it stops
// fetching: memory stays bounded under any backlog.
//
// One oversized read is let through when nothing else is in flight, so a
// single record larger than the byte cap cannot wedge the pipeline.
//
// Bytes are what records hold: their size as read, plus, once decoded, an
// estimate of their decoded form (decodedWeight), which for Avro is several
// times the wire size.
type inFlightLimiter struct {
	mu         sync.Mutex
	maxRecords int64
	maxBytes   int64
	records    int64
	bytes      int64
	changed    chan struct{} // closed and replaced on every release
}

func newInFlightLimiter(maxRecords, maxBytes int) *inFlightLimiter {
	return &inFlightLimiter{maxRecords: int64(maxRecords), maxBytes: int64(maxBytes), changed: make(chan struct{})}
}

func (l *inFlightLimiter) acquire(ctx context.Context, records, bytes int) error {
	for {
		ok, ch := l.take(records, bytes)
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tryAcquire is acquire without waiting: false when the cap is reached.
func (l *inFlightLimiter) tryAcquire(records, bytes int) bool {
	ok, _ := l.take(records, bytes)
	return ok
}

// take takes what fits, or returns the channel closed on the next release.
func (l *inFlightLimiter) take(records, bytes int) (bool, chan struct{}) {
	r, b := int64(records), int64(bytes)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.records == 0 || (l.records+r <= l.maxRecords && l.bytes+b <= l.maxBytes) {
		l.records += r
		l.bytes += b
		return true, nil
	}
	return false, l.changed
}

// add counts bytes without waiting: what a record turned out to hold once
// decoded. The next acquire waits for it to be released.
func (l *inFlightLimiter) add(bytes int) {
	l.mu.Lock()
	l.bytes += int64(bytes)
	l.mu.Unlock()
}

func (l *inFlightLimiter) release(records, bytes int) {
	if records == 0 && bytes == 0 {
		return
	}
	l.mu.Lock()
	l.records -= int64(records)
	l.bytes -= int64(bytes)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *inFlightLimiter) usage() (records, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.records, l.bytes
}
