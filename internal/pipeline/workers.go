package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"golang.org/x/sync/errgroup"
)

// Distribution says how a consumer's records are spread over its workers
// (parallelism.by).
type Distribution string

const (
	// ByKey: the same key always goes to the same worker, in offset
	// order; a record without a key goes by its partition.
	ByKey Distribution = "key"
	// ByPartition: a partition's records go to one worker, in order.
	ByPartition Distribution = "partition"
	// ByRoundRobin: any free worker writes the next batch; no order.
	ByRoundRobin Distribution = "round_robin"
)

// Workers are per consumer, not shared by the consumers of a pipeline: a
// consumer owns its reader and everything it read, so stopping one
// (RemoveConsumer, Reconfigure's restarts, a drain for a merge) finishes
// its own writes and acks to its own reader, as with a single writer. The
// pipeline has Consumers x Workers writers.
//
// With ByKey and ByPartition each worker is a lane: a batch of its own,
// filled by the read loop, and one writer that writes the lane's batches
// in order. A record's lane is its slot (connector.Record.Slot) modulo the
// number of workers, so all records of a (topic, partition, slot) are
// written by one writer in offset order, whatever the number of workers:
// per-key order holds, and an exactly-once sink can deduplicate by the
// highest offset it stored per slot. A slow write holds back its lane
// only, until the lane's queue is full; then the read loop waits.
//
// A sink that commits a batch's source offsets per partition in the
// batch's own transaction (connector.SpreadWriter: the Kafka sink with
// exactly-once) cannot take lanes: a lane's commit would pass records
// of the same partition still queued in other lanes. There is one lane
// with one writer then, as without parallelism, its records slotted, and
// the sink spreads each batch over the workers within its transaction.
//
// With ByRoundRobin there is one lane, as without parallelism, and its
// batches go to whichever of the workers is free: batches stay full and
// one slow write holds back nothing, at the price of order.
//
// Acks come back from the workers in any order; the source commits a
// position only when every record below it is acked (the Kafka reader's
// partition trackers), so the committed offset never passes a record
// another worker has not yet made durable. Memory is bounded as before:
// the in-flight limiter is acquired when records are read and released
// when they are settled, whichever lane holds them.
type dispatcher struct {
	c       *consumer
	lanes   []*lane
	slotted bool // set Record.Slot: ByKey and ByPartition
	byKey   bool
	// batchRecords is the most records a lane's batch holds:
	// batch.max_records, less with many lanes, so that every lane's
	// batch being built, its queue and its write fit in
	// max_in_flight_records together. Otherwise the cap would be reached
	// with every lane's batch half full, and each read would wait for a
	// write and flush small batches.
	batchRecords int
}

// lane is a batch being built and the queue of batches its writers take.
type lane struct {
	cur     *batch
	batches chan *batch // small, so memory stays bounded
}

// startWriters starts the consumer's writers in g and returns the
// dispatcher the read loop fills. Writers get writeCtx: they finish what
// was read after readCtx ends; a failed write calls stop, which ends
// reading, and the writer then only releases what is left in its queue.
func (c *consumer) startWriters(g *errgroup.Group, writeCtx context.Context, stop func()) *dispatcher {
	o := c.p.opts
	d := &dispatcher{c: c, slotted: o.By == ByKey || o.By == ByPartition, byKey: o.By == ByKey}
	nLanes, writersPerLane := 1, o.Workers
	d.batchRecords = o.BatchRecords
	if c.p.spread > 0 {
		writersPerLane = 1 // the sink's workers write each batch
	} else if d.slotted {
		nLanes, writersPerLane = o.Workers, 1
		if nLanes > 1 {
			// Per lane: one batch being built, two queued, one written;
			// and room for one more read.
			room := max(o.MaxInFlightRecords-o.MaxPollRecords, o.MaxInFlightRecords/2)
			d.batchRecords = max(1, min(o.BatchRecords, room/(4*nLanes)))
		}
	}
	var stopPreparing atomic.Bool // after a failed write, the rest is only released
	for range nLanes {
		l := &lane{cur: &batch{}, batches: make(chan *batch, max(2, writersPerLane))}
		d.lanes = append(d.lanes, l)
		toWrite := l.batches
		if prep, ok := o.Sink.(connector.Preparer); ok && nLanes == 1 && c.p.spread == 0 {
			// A third stage between reading and writing: the next batch
			// is prepared while the previous one is written. One more
			// batch in flight, still within the in-flight limits. With
			// several lanes, each writer prepares its own batch in
			// WritePrepared, in parallel with the others.
			prepared := make(chan *batch, 1)
			toWrite = prepared
			g.Go(func() error {
				defer close(prepared)
				for b := range l.batches {
					if !stopPreparing.Load() {
						b.prepared = prep.Prepare(b.records)
					}
					prepared <- b
				}
				return nil
			})
		}
		for range writersPerLane {
			g.Go(func() error { return c.writeLoop(writeCtx, toWrite, stop, &stopPreparing) })
		}
	}
	return d
}

// writeLoop writes the batches of one queue until it is closed.
func (c *consumer) writeLoop(ctx context.Context, batches <-chan *batch, stop func(), stopPreparing *atomic.Bool) error {
	var failed error
	for b := range batches {
		if failed == nil {
			failed = c.p.writeBatch(ctx, c.reader, b)
			if failed != nil {
				stopPreparing.Store(true)
				stop()
			}
		}
		if failed != nil {
			// Not acked, so not committed: read again after a restart.
			c.p.limiter.release(len(b.records), b.weight)
		}
		c.pending.Done()
	}
	return failed
}

// slotOf is r's slot: a hash of its key as read, or of its topic and
// partition (by partition, or a record without a key). FNV-1a: stable
// across processes and versions, as offsets stored per slot require.
func slotOf(r *connector.Record, byKey bool) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	if byKey && len(r.Key) > 0 {
		for _, b := range r.Key {
			h = (h ^ uint32(b)) * prime32
		}
		return int(h % connector.Slots)
	}
	for i := 0; i < len(r.Topic); i++ {
		h = (h ^ uint32(r.Topic[i])) * prime32
	}
	return int((h + uint32(r.Partition)) % connector.Slots)
}

// laneOf is the lane r goes to; r.Slot is set for slotted dispatchers.
func (d *dispatcher) laneOf(r *connector.Record) *lane {
	if len(d.lanes) == 1 {
		return d.lanes[0]
	}
	return d.lanes[r.Slot%len(d.lanes)]
}

// add puts a decoded record into its lane's batch; weight is what the
// limiter holds for it. A lane that reaches batch.max_records is flushed
// at once (with one lane, reads never bring more than the batch has room
// for).
func (d *dispatcher) add(r *connector.Record, weight int) {
	l := d.laneOf(r)
	if l.cur.first.IsZero() {
		l.cur.first = time.Now()
	}
	l.cur.records = append(l.cur.records, r)
	l.cur.bytes += r.Size()
	l.cur.weight += weight
	if len(d.lanes) > 1 && len(l.cur.records) >= d.batchRecords {
		d.flush(l, "records")
	}
}

// flush hands l's batch to its writers; it blocks while they are busy and
// their queue is full: backpressure.
func (d *dispatcher) flush(l *lane, trigger string) {
	if len(l.cur.records) == 0 {
		return
	}
	l.cur.trigger = trigger
	d.c.pending.Add(1)
	l.batches <- l.cur
	l.cur = &batch{}
}

func (d *dispatcher) flushAll(trigger string) {
	for _, l := range d.lanes {
		d.flush(l, trigger)
	}
}

// flushDue flushes the lanes whose batch is full or has waited linger.
func (d *dispatcher) flushDue(linger time.Duration) {
	o := d.c.p.opts
	for _, l := range d.lanes {
		switch {
		case len(l.cur.records) >= d.batchRecords:
			d.flush(l, "records")
		case l.cur.bytes >= o.BatchBytes:
			d.flush(l, "bytes")
		case len(l.cur.records) > 0 && time.Since(l.cur.first) >= linger:
			d.flush(l, "linger")
		}
	}
}

// oldest is when the oldest record waiting in a batch was added; zero
// when every batch is empty.
func (d *dispatcher) oldest() time.Time {
	var t time.Time
	for _, l := range d.lanes {
		if len(l.cur.records) > 0 && (t.IsZero() || l.cur.first.Before(t)) {
			t = l.cur.first
		}
	}
	return t
}

// room is the most records the next Read may bring: what the batch has
// room for with one lane; with several, a full lane is flushed as it
// fills, so a whole batch.
func (d *dispatcher) room() int {
	if len(d.lanes) == 1 {
		return d.c.p.opts.BatchRecords - len(d.lanes[0].cur.records)
	}
	return d.c.p.opts.BatchRecords
}

// close ends the writers: call after the last flush.
func (d *dispatcher) close() {
	for _, l := range d.lanes {
		close(l.batches)
	}
}
