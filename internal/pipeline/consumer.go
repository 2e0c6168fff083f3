package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"golang.org/x/sync/errgroup"
)

// consumer is one reader of the pipeline's source with its own writers
// (one by default; parallelism.workers, see workers.go): the read loop
// decodes and batches while the writers write the previous batches, so
// fetching and writing overlap. With one writer, batches of one consumer
// are written in order, which keeps per-partition order in the sink.
type consumer struct {
	p      *Pipeline
	id     string
	reader connector.Reader
	done   chan struct{}

	pending sync.WaitGroup // batches handed to writers and not yet done

	mu        sync.Mutex
	interrupt context.CancelFunc // cancels the Read in progress
	stopRead  context.CancelFunc // ends the read loop (RemoveConsumer)
	stopping  bool               // stop was asked, maybe before run set stopRead
	paused    bool

	// parked is the pause (Pipeline.pauseGen) the consumer waits at the
	// gate of, its batch flushed and its writers idle; 0 while it runs.
	parked atomic.Uint64

	readRun readRun // the run of failed Reads going on, if any

	// Reused by accept, on the consumer's goroutine.
	sizes    []int
	prepared []prepared
}

type batch struct {
	records  []*connector.Record
	prepared any       // the sink's connector.Preparer result, if it has one
	bytes    int       // as read: what batch.max_bytes counts
	weight   int       // bytes plus the decoded estimate: what the limiter holds
	first    time.Time // when the first record was added
	trigger  string    // why it was flushed: records, bytes, linger, limit, pause, stop
}

func newConsumer(p *Pipeline, id string, r connector.Reader) *consumer {
	return &consumer{p: p, id: id, reader: r, done: make(chan struct{})}
}

// run owns the consumer's goroutines. readCtx ends reading; writeCtx, which
// outlives it by the shutdown timeout, bounds the final writes.
func (c *consumer) run(readCtx, writeCtx context.Context) error {
	// Unlisted before done is closed: whoever waits on done (RemoveConsumer,
	// Reconfigure) may reuse the id at once.
	defer func() {
		c.p.removeConsumer(c)
		close(c.done)
	}()
	readCtx, stop := context.WithCancel(readCtx)
	c.mu.Lock()
	c.stopRead = stop
	if c.stopping {
		stop()
	}
	c.mu.Unlock()
	defer stop()

	g, gctx := errgroup.WithContext(readCtx)
	d := c.startWriters(g, writeCtx, stop)
	g.Go(func() error {
		defer d.close()
		return c.readLoop(gctx, writeCtx, d)
	})
	err := g.Wait()
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(writeCtx), 15*time.Second)
	defer cancel()
	if cerr := c.reader.Close(closeCtx); cerr != nil {
		c.p.log.Warn("closing consumer", "consumer", c.id, "err", cerr)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (c *consumer) readLoop(ctx, writeCtx context.Context, d *dispatcher) error {
	defer d.flushAll("stop")
	defer c.readRun.end() // status shows no retry of a consumer that is gone
	linger := c.p.opts.Linger
	for {
		if ctx.Err() != nil {
			return nil
		}
		if gate, pause := c.p.pauseGate(); gate != nil {
			d.flushAll("pause")
			c.pending.Wait()
			c.parked.Store(pause)
			select {
			case <-gate:
			case <-ctx.Done():
			}
			c.parked.Store(0)
			// Paused again before this goroutine woke: park at the new
			// gate before reading anything.
			continue
		}
		readCtx, interrupt := context.WithCancel(ctx)
		if first := d.oldest(); !first.IsZero() {
			readCtx, interrupt = context.WithDeadline(ctx, first.Add(linger))
		}
		c.mu.Lock()
		c.interrupt = interrupt
		interrupted := c.paused
		c.mu.Unlock()
		if interrupted {
			interrupt()
		}
		// Never read more than the batch has room for: a sink write holds
		// at most batch.max_records.
		max := int(c.p.maxPoll.Load())
		if room := d.room(); max <= 0 || room < max {
			max = room
		}
		recs, err := c.reader.Read(readCtx, max)
		// Taken before interrupt() below, which ends readCtx: the
		// context's error after our own deadline (linger, pause, stop)
		// is no failure. The source's own error is one, even if the
		// deadline passed too: Pub/Sub hands a refusal to one Read only.
		ended := readCtx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
		c.mu.Lock()
		c.interrupt = nil
		c.mu.Unlock()
		interrupt()
		switch {
		case err == nil:
			c.readRun.end()
		case ended:
			// Says nothing of the source: neither a failure nor a
			// success.
		case connector.IsPermanent(err):
			c.p.stats.errors.Add(1)
			// Waiting cannot heal it (fenced, not authorised): what
			// was read but not handed on is read again after a
			// restart, since it is not acked.
			return fmt.Errorf("reading from %s: %w", c.p.sourceName, err)
		default:
			// The client retries internally; back off and read
			// again, up to max_retry_time (readretry.go). Records that
			// came with the error are handed on after the wait.
			c.p.stats.errors.Add(1)
			if err := c.readFailed(ctx, err); err != nil {
				return err
			}
		}
		if len(recs) > 0 {
			if err := c.accept(ctx, writeCtx, d, recs); err != nil {
				return err
			}
		}
		d.flushDue(linger)
	}
}

// accept counts, decodes and batches freshly read records. Bad records go
// where on_error says (and are acked once handled).
func (c *consumer) accept(ctx, writeCtx context.Context, d *dispatcher, recs []*connector.Record) error {
	size := 0
	for _, r := range recs {
		size += r.Size()
	}
	c.p.stats.read(len(recs), size)
	c.p.eventTime.read(recs)
	// Acquire after the read: the Read bound (max.poll.records) keeps the
	// overshoot small, and blocking here stops the next Read. The batch
	// being built holds part of what is in flight: it goes to the writer
	// before waiting, or nothing might ever be released.
	if !c.p.limiter.tryAcquire(len(recs), size) {
		d.flushAll("limit")
		if err := c.p.limiter.acquire(ctx, len(recs), size); err != nil {
			// Shutting down: the records are not acked, so they are not
			// committed and will be read again.
			return nil
		}
	}
	// What the limiter holds for each record until it is settled: a
	// transform may change its key and headers, so taken before, as is
	// its slot (from the key as read, stable whatever the transforms).
	sizes := c.sizes[:0]
	for _, r := range recs {
		sizes = append(sizes, r.Size())
		if d.slotted {
			r.Slot = slotOf(r, d.byKey)
		}
	}
	c.sizes = sizes
	outcomes := c.prepare(writeCtx, recs)
	for i, r := range recs {
		size := sizes[i]
		keep, err := outcomes[i].keep, outcomes[i].err
		if err == nil && keep {
			// From here r weighs what writeBatch will release for it.
			weight := r.Size() + decodedWeight(r)
			if extra := weight - size; extra >= 0 {
				c.p.limiter.add(extra)
			} else {
				c.p.limiter.release(0, -extra)
			}
			d.add(r, weight)
			continue
		}
		if err == nil {
			// Filtered out: settled now, so its offset commits with
			// those around it.
			c.p.stats.filter()
			c.reader.Ack([]*connector.Record{r})
			c.p.eventTime.settled([]*connector.Record{r}, false)
			c.p.limiter.release(1, size)
			continue
		}
		var re *connector.RecordError
		if !errors.As(err, &re) {
			// decode retries transient errors until writeCtx ends.
			c.p.limiter.release(1, size)
			return err
		}
		if err := c.p.handleBad(writeCtx, re); err != nil {
			c.p.limiter.release(1, size)
			return err
		}
		c.reader.Ack([]*connector.Record{r})
		c.p.eventTime.settled([]*connector.Record{r}, false)
		c.p.limiter.release(1, size)
	}
	return nil
}

// prepared is what decoding and transforming one record gave.
type prepared struct {
	keep bool
	err  error
}

// prepareChunk is the fewest records a goroutine of prepare takes: below
// it, starting goroutines costs more than it spreads.
const prepareChunk = 256

// prepare decodes and transforms recs. Records are independent there
// (the decoder and the transforms are safe for concurrent use), so a
// large read is spread over up to GOMAXPROCS goroutines: otherwise the
// consumer's one goroutine decodes and transforms every record while the
// other cores wait for it. What follows (acks, dead letters, batching)
// stays on the consumer, in offset order.
func (c *consumer) prepare(ctx context.Context, recs []*connector.Record) []prepared {
	if cap(c.prepared) < len(recs) {
		c.prepared = make([]prepared, len(recs))
	}
	out := c.prepared[:len(recs)]
	clear(out) // nothing of the last read is taken for this one
	one := func(i int) {
		r := recs[i]
		out[i].keep = true
		out[i].err = c.p.decode(ctx, r)
		if out[i].err == nil && c.p.opts.Transformer != nil {
			out[i].keep, out[i].err = c.p.opts.Transformer.Transform(r)
		}
	}
	n := min(runtime.GOMAXPROCS(0), len(recs)/prepareChunk)
	if n <= 1 {
		for i := range recs {
			one(i)
		}
		return out
	}
	var g errgroup.Group
	per := (len(recs) + n - 1) / n
	for lo := 0; lo < len(recs); lo += per {
		hi := min(lo+per, len(recs))
		g.Go(func() error {
			for i := lo; i < hi; i++ {
				one(i)
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no error: each record keeps its own
	return out
}

// decodedWeight estimates what a decoded record holds beyond its bytes: a
// map entry and a boxed value per top-level field, and copies of its
// strings (calibrated on the 20-field Avro and JSON records of the codec
// benchmarks: 1.9 and 2.3 KB allocated per record). Raw records, and
// values a sink parses itself, hold nothing more; a value the transforms
// reshaped without decoding holds its new bytes.
func decodedWeight(r *connector.Record) int {
	if r.Reshaped != nil {
		return len(r.Reshaped)
	}
	if len(r.Fields) == 0 {
		return 0
	}
	return 80*len(r.Fields) + len(r.Value)
}

func (c *consumer) pause() {
	c.mu.Lock()
	c.paused = true
	if c.interrupt != nil {
		c.interrupt()
	}
	c.mu.Unlock()
	if pr, ok := c.reader.(connector.Pauser); ok {
		pr.Pause()
	}
}

func (c *consumer) resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
	if pr, ok := c.reader.(connector.Pauser); ok {
		pr.Resume()
	}
}

func (c *consumer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	if c.stopRead != nil {
		c.stopRead()
	}
}
