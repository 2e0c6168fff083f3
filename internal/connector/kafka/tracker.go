package kafka

import "time"

// partitionTracker follows the records of one partition from read to ack
// and knows the highest offset below which everything is acked: the only
// position that may be committed.
//
// Records are registered in read order as chunks (one chunk per partition
// per poll). Acks may come in any order; the committable position only moves
// past a chunk when every record of it and of every chunk before it is
// acked. A tracker is retired when its partition is revoked or lost: acks
// for its records are ignored from then on, so nothing is ever committed for
// a partition this consumer no longer owns (the new owner reads those
// records again: at least once, never lost).
//
// Callers hold the reader's mutex.
type partitionTracker struct {
	r         *reader // the member that owns it
	topic     string
	partition int32
	retired   bool

	chunks []*chunk // FIFO of unacked chunks, from head
	head   int

	next      int64 // offset to commit: everything below is done; -1 unknown
	committed int64 // last offset committed; -1 none
	readNext  int64 // offset after the last record read; -1 none
	hwm       int64 // high watermark seen on the last fetch; -1 unknown
	end       int64 // end offset listed by the lag refresher (lag.go); -1 unknown
	// behindSince is when the refresher first saw records waiting in the
	// log with none of them read; zero otherwise.
	behindSince time.Time
}

type chunk struct {
	t         *partitionTracker
	first     int64
	last      int64
	remaining int
	// firstTimestamp is the record timestamp of first, for lag in time.
	firstTimestamp time.Time
}

func newPartitionTracker(topic string, partition int32) *partitionTracker {
	return &partitionTracker{topic: topic, partition: partition, next: -1, committed: -1, readNext: -1, hwm: -1, end: -1}
}

// add registers n records read from first to last (inclusive).
func (t *partitionTracker) add(first, last int64, n int) *chunk {
	c := &chunk{t: t, first: first, last: last, remaining: n}
	t.chunks = append(t.chunks, c)
	t.readNext = last + 1
	return c
}

// ack marks n records of c done and advances the committable position.
// It reports false when the tracker is retired (the ack is refused).
func (c *chunk) ack(n int) bool {
	t := c.t
	if t.retired {
		return false
	}
	c.remaining -= n
	for t.head < len(t.chunks) && t.chunks[t.head].remaining <= 0 {
		t.next = t.chunks[t.head].last + 1
		t.chunks[t.head] = nil
		t.head++
	}
	if t.head > 64 && t.head*2 > len(t.chunks) {
		n := copy(t.chunks, t.chunks[t.head:])
		clear(t.chunks[n:])
		t.chunks = t.chunks[:n]
		t.head = 0
	}
	return true
}

// commitOffset returns the offset to commit and whether it is new.
func (t *partitionTracker) commitOffset() (int64, bool) {
	return t.next, t.next >= 0 && t.next > t.committed
}

// pending is the number of chunks read and not fully acked.
func (t *partitionTracker) pending() int { return len(t.chunks) - t.head }

// lag is records between the partition's end (the newer of the listed
// end offset and the last fetch's high watermark) and the committable
// position.
func (t *partitionTracker) lag() int64 {
	end := max(t.hwm, t.end)
	if end < 0 {
		return 0
	}
	pos := t.next
	if pos < 0 {
		if t.head < len(t.chunks) {
			pos = t.chunks[t.head].first
		} else if t.committed >= 0 {
			pos = t.committed
		} else {
			return 0
		}
	}
	if l := end - pos; l > 0 {
		return l
	}
	return 0
}

// setEnd stores an end offset listed at now.
func (t *partitionTracker) setEnd(end int64, now time.Time) {
	t.end = max(t.end, end)
	if t.pending() == 0 && t.lag() > 0 {
		if t.behindSince.IsZero() {
			t.behindSince = now
		}
	} else {
		t.behindSince = time.Time{}
	}
}

// lagAge is how long the oldest record not yet finished has waited: the
// age (by its record timestamp) of the first record read and not acked,
// which is the committable position. When nothing is in flight but
// records wait in the log unread, their timestamps are unknown without a
// fetch; the age is then the time since the refresher first saw them
// waiting, a lower bound. Zero when caught up.
func (t *partitionTracker) lagAge(now time.Time) time.Duration {
	if t.head < len(t.chunks) {
		if ts := t.chunks[t.head].firstTimestamp; !ts.IsZero() {
			return max(now.Sub(ts), 0)
		}
		return 0
	}
	if !t.behindSince.IsZero() && t.lag() > 0 {
		return now.Sub(t.behindSince)
	}
	return 0
}
