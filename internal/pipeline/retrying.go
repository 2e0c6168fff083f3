package pipeline

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// RetryStatus is one operation the pipeline keeps retrying: status shows
// it, so that "running" never hides a partition that does not move.
type RetryStatus struct {
	What      string    `json:"what"` // write, decode, dlq, read
	Since     time.Time `json:"since"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
}

// retrying holds the operations being retried now.
type retrying struct {
	mu  sync.Mutex
	ops map[*retryOp]struct{}
}

// retryOp is one retry loop: a write, a decode, a dead-letter send, or a
// consumer's run of failed source reads (readRun). It registers on its
// first failure and leaves when the loop ends.
type retryOp struct {
	p       *Pipeline
	what    string // the metric label: write, decode, dlq, read
	msg     string // what the log says is retried
	bo      backoff
	since   time.Time
	attempt int
	last    error
}

func (p *Pipeline) newRetry(what, msg string) *retryOp {
	return &retryOp{p: p, what: what, msg: msg, bo: newBackoff()}
}

// failed records err and waits for the next attempt. It returns an error
// when the loop must stop: ctx ended (shutdown), or the operation has
// failed for longer than max_retry_time, which turns a transient error
// that does not heal into a permanent one.
func (o *retryOp) failed(ctx context.Context, err error, logArgs ...any) error {
	if rerr := o.note(err, logArgs...); rerr != nil {
		return rerr
	}
	if werr := o.bo.wait(ctx); werr != nil {
		return fmt.Errorf("shutdown timeout reached: %w", err)
	}
	return nil
}

// note is failed without the wait: it registers the loop on its first
// failure, records err, and returns a Permanent error once the loop has
// failed for longer than max_retry_time; otherwise it counts the retry
// and logs it. Only the loop's own goroutine calls it, and never
// concurrently with done.
func (o *retryOp) note(err error, logArgs ...any) error {
	r := &o.p.retrying
	if o.attempt == 0 {
		o.since = time.Now()
		r.mu.Lock()
		if r.ops == nil {
			r.ops = map[*retryOp]struct{}{}
		}
		r.ops[o] = struct{}{}
		r.mu.Unlock()
	}
	r.mu.Lock()
	o.attempt++
	o.last = err
	r.mu.Unlock()
	if limit := o.p.opts.MaxRetryTime; limit > 0 && time.Since(o.since) >= limit {
		return connector.Permanent(fmt.Errorf("still failing after %s of retries (max_retry_time %s): %w", time.Since(o.since).Round(time.Second), limit, err))
	}
	o.p.stats.retries.Add(1)
	metrics.Retries.WithLabelValues(o.p.opts.Name, o.what).Inc()
	o.p.log.Warn(o.msg+"; retrying", append(logArgs, "attempt", o.attempt, "since", o.since.Format(time.RFC3339), "err", err)...)
	return nil
}

// done unregisters the loop; call it (deferred) whatever the outcome.
func (o *retryOp) done() {
	if o.attempt == 0 {
		return
	}
	r := &o.p.retrying
	r.mu.Lock()
	delete(r.ops, o)
	r.mu.Unlock()
}

// snapshot lists what is being retried, oldest first.
func (r *retrying) snapshot() []RetryStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RetryStatus, 0, len(r.ops))
	for o := range r.ops {
		out = append(out, RetryStatus{What: o.what, Since: o.since, Attempts: o.attempt, LastError: o.last.Error()})
	}
	slices.SortFunc(out, func(a, b RetryStatus) int { return a.Since.Compare(b.Since) })
	return out
}
