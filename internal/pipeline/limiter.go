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
	r, b := int64(records), int64(bytes)
	for {
		l.mu.Lock()
		if l.records == 0 || (l.records+r <= l.maxRecords && l.bytes+b <= l.maxBytes) {
			l.records += r
			l.bytes += b
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
