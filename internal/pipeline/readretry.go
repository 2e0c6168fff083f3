package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// A source whose Read keeps failing with a transient error (a Pub/Sub
// subscription that was deleted, a Kafka cluster that is gone) is
// retried as a write is: status says "retrying read", the pipeline is
// degraded, sluice_retries_total{stage="read"} counts, and once the
// failures have gone on for longer than max_retry_time the pipeline stops
// with the last one. Nothing stalls forever in silence.
//
// Unlike a write, reading is no single operation that either succeeds or
// fails: a client may report a network error now and then while it reads
// fine. So a consumer's failed Reads make a run, which ends
//   - at any Read that succeeds;
//   - when no Read failed for readQuiet, unless the source's own health
//     (connector.HealthReporter) says unreachable: a Kafka cluster cut
//     off for good fails a Read only when its group session gives up,
//     a minute or more apart, and quiet between those is no healing;
//   - when no Read failed for readHealthy while the source's own health
//     (connector.HealthReporter) said healthy all that time: a Kafka
//     client that reports an error once a minute while it reads does not
//     add up to a stop.
const (
	readQuiet   = 2 * time.Minute
	readHealthy = 15 * time.Second
	// readSweep is how often runs are checked for an end, and the
	// source's health sampled.
	readSweep = time.Second
)

// readRun is one consumer's run of failed Reads: a retryOp "read" while
// it lasts.
type readRun struct {
	mu   sync.Mutex
	op   *retryOp  // nil: no run
	last time.Time // the latest failure of the run
}

// readFailed counts a transient Read failure in the consumer's run,
// starting one if none is on, and waits the run's backoff. It returns an
// error, naming the source, once the run has lasted longer than
// max_retry_time; nil when ctx ends.
func (c *consumer) readFailed(ctx context.Context, err error) error {
	run := &c.readRun
	run.mu.Lock()
	if run.op == nil {
		run.op = c.p.newRetry("read", "reading from "+c.p.sourceName)
	}
	op := run.op
	run.last = time.Now()
	// Under run.mu: the sweeper may end the run (op.done) at any time.
	nerr := op.note(err, "consumer", c.id)
	run.mu.Unlock()
	if nerr != nil {
		return fmt.Errorf("reading from %s: %w", c.p.sourceName, nerr)
	}
	// The backoff is the op's own, touched by this goroutine only: it
	// grows over the run, and a new run starts it over.
	_ = op.bo.wait(ctx)
	return nil
}

// end ends the run, if one is on.
func (r *readRun) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.op != nil {
		r.op.done()
		r.op = nil
	}
}

// endIfOver ends the run if it is over at now (see the rules above);
// healthySince is since when the source has said healthy without a break,
// zero if it does not say so now or cannot tell; unreachable, whether it
// says unreachable now. It reports whether it ended one.
func (r *readRun) endIfOver(now, healthySince time.Time, unreachable bool, quiet, healthy time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.op == nil {
		return false
	}
	calm := now.Sub(r.last)
	byQuiet := calm >= quiet && !unreachable
	byHealth := !healthySince.IsZero() && calm >= healthy && now.Sub(healthySince) >= healthy
	if !byQuiet && !byHealth {
		return false
	}
	r.op.done()
	r.op = nil
	return true
}

// endReadRuns ends the consumers' runs of failed Reads that are over,
// until ctx ends.
func (p *Pipeline) endReadRuns(ctx context.Context) error {
	hr, _ := p.opts.Source.(connector.HealthReporter)
	var healthySince time.Time
	unreachable := false
	t := time.NewTicker(p.readSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		if hr != nil {
			state := hr.SourceHealth().State
			unreachable = state == connector.SourceUnreachable
			if state != connector.SourceHealthy {
				healthySince = time.Time{}
			} else if healthySince.IsZero() {
				healthySince = now
			}
		}
		p.mu.Lock()
		cs := p.consumerList()
		p.mu.Unlock()
		for _, c := range cs {
			if c.readRun.endIfOver(now, healthySince, unreachable, p.readQuiet, p.readHealthy) {
				p.log.Info("source reads no longer failing; read retries cleared", "consumer", c.id)
			}
		}
	}
}
