package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/internal/connector"
)

// ErrInvalidProperties wraps a property change the source refused: an
// unknown property or a bad value. Nothing was changed.
var ErrInvalidProperties = errors.New("invalid properties")

// ErrNotReconfigurable is returned by Reconfigure when the source's
// properties cannot be changed at run time.
var ErrNotReconfigurable = errors.New("this source's properties cannot be changed at run time")

// Properties returns the source's client properties in force, or nil when
// the source has none that can be changed.
func (p *Pipeline) Properties() map[string]any {
	if src, ok := p.opts.Source.(connector.Reconfigurable); ok {
		return src.Properties()
	}
	return nil
}

// MaxPollRecords is the most records a consumer asks the source for in one
// Read (max.poll.records, or batch.max_records when unset).
func (p *Pipeline) MaxPollRecords() int { return int(p.maxPoll.Load()) }

// ErrRolledBack wraps a property change the consumers could not start
// with: the previous properties were put back and the consumers restarted
// with them.
var ErrRolledBack = errors.New("the consumers could not start with the new properties; the previous properties are back")

// Reconfigure changes the source's client properties (max.poll.records,
// fetch.min.bytes, ...) while the pipeline runs. The source validates the
// change first (ErrInvalidProperties, nothing changed). Then, when the
// pipeline is running or paused, every consumer is restarted in turn, since
// a Kafka client's fetch settings are fixed when it is created: the
// consumer stops reading, writes and acks what it read, commits and leaves
// the group; a new one with the same id joins with the new properties, and
// only then is the next consumer restarted. Nothing is lost; records read
// but not yet handed to the engine are read again by whoever owns their
// partition next (at least once). A paused pipeline stays paused.
//
// When a consumer cannot be opened with the new properties, or ctx ends
// before it is back, the change is rolled back: the previous properties
// are set again, the failed consumer is reopened with them (by Run, with
// backoff, shown in status as retrying) and those already restarted are
// restarted again; the error wraps ErrRolledBack. No consumer is left
// behind with properties nobody asked for, nor gone while status says
// running.
func (p *Pipeline) Reconfigure(ctx context.Context, changes map[string]any) error {
	src, ok := p.opts.Source.(connector.Reconfigurable)
	if !ok {
		return ErrNotReconfigurable
	}
	p.membership.Lock()
	defer p.membership.Unlock()
	previous := src.Properties()
	if err := src.SetProperties(changes); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProperties, err)
	}
	oldMax := p.maxPoll.Load()
	p.storeMaxPoll(src)

	p.mu.Lock()
	// Starting counts: Run may have opened some consumers with the old
	// properties while it still opens the others (with the new ones).
	live := p.state == StateStarting || p.state == StateRunning || p.state == StatePaused
	ids := append([]string(nil), p.order...)
	p.mu.Unlock()
	if !live || len(ids) == 0 {
		return nil // consumers opened by Run use the new properties
	}
	p.log.Info("changing source properties: restarting consumers one by one", "changes", changes, "consumers", len(ids))
	for i, id := range ids {
		err := p.restartConsumer(ctx, id)
		if err == nil {
			continue
		}
		p.rollBack(ctx, src, previous, changes, oldMax, id, ids[:i])
		return fmt.Errorf("%w: consumer %s: %w", ErrRolledBack, id, err)
	}
	p.log.Info("source properties changed", "max_poll_records", p.maxPoll.Load())
	return nil
}

func (p *Pipeline) storeMaxPoll(src connector.Reconfigurable) {
	n := src.MaxPollRecords()
	if n <= 0 {
		n = p.opts.BatchRecords
	}
	p.maxPoll.Store(int64(n))
}

// rollBack puts the properties back as they were before changes, after
// consumer failed could not be restarted with them, and restarts the
// consumers that already run with the new ones. Run keeps reopening failed
// (now with the previous properties). Callers hold membership.
func (p *Pipeline) rollBack(ctx context.Context, src connector.Reconfigurable, previous, changes map[string]any, oldMax int64, failed string, restarted []string) {
	undo := make(map[string]any, len(changes))
	for k := range changes {
		undo[k] = previous[k] // nil when it was unset: removed again
	}
	if err := src.SetProperties(undo); err != nil {
		// The previous properties were accepted before; this cannot
		// happen unless the source changed its rules meanwhile.
		p.log.Error("rolling back source properties", "err", err)
	}
	p.maxPoll.Store(oldMax)
	p.log.Warn("consumer could not start with the new properties: rolled back", "consumer", failed, "changes", changes)
	for _, id := range restarted {
		if err := p.restartConsumer(ctx, id); err != nil {
			p.log.Warn("restarting consumer with the previous properties", "consumer", id, "err", err)
		}
	}
}

// restartConsumer stops consumer id and waits until Run has opened its
// replacement (see reopenIfRestarting). It returns the error of the first
// attempt to open the replacement when that fails; Run keeps trying, with
// the source's properties as they are then. Callers hold membership.
func (p *Pipeline) restartConsumer(ctx context.Context, id string) error {
	r := &restart{firstTry: make(chan error, 1)}
	p.mu.Lock()
	c, ok := p.consumers[id]
	if ok {
		if p.restarts == nil {
			p.restarts = map[*consumer]*restart{}
		}
		p.restarts[c] = r
	}
	p.mu.Unlock()
	if !ok {
		return nil // it stopped meanwhile: nothing to restart
	}
	c.stop()
	select {
	case err := <-r.firstTry:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("still finishing its batches; it rejoins when done: %w", ctx.Err())
	}
	p.mu.Lock()
	next, back := p.consumers[id]
	p.mu.Unlock()
	if !back || next == c {
		return errNotReopened
	}
	return nil
}

// restart is Reconfigure's request to reopen one consumer.
type restart struct {
	firstTry chan error // the first attempt's outcome; buffered
}

// errNotReopened tells Reconfigure the consumer was not reopened because
// the pipeline is stopping or failing.
var errNotReopened = errors.New("it stopped and was not reopened: the pipeline is stopping or failed")

// reopenIfRestarting runs in the goroutine Run gave consumer c, after c has
// stopped with err. When Reconfigure asked for a restart, it opens the
// replacement under the same id. The first attempt's outcome goes to
// Reconfigure (which rolls back on failure); further attempts, with the
// properties then in force, go on with backoff, shown in status as
// retrying, until ctx (Run's) ends or max_retry_time passes, which fails
// the pipeline: a consumer is never gone while status says running. Being
// owned by Run, the restart completes even if the operator's request gave
// up waiting.
func (p *Pipeline) reopenIfRestarting(ctx context.Context, c *consumer, err error, start func(string) error) error {
	p.mu.Lock()
	r, ok := p.restarts[c]
	delete(p.restarts, c)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	if err != nil {
		r.firstTry <- errNotReopened
		return nil // the pipeline is failing: Run reports err
	}
	serr := start(c.id)
	r.firstTry <- serr
	if serr == nil {
		return nil
	}
	op := p.newRetry("reopen", "reopening consumer "+c.id)
	defer op.done()
	for {
		if ferr := op.failed(ctx, serr, "consumer", c.id); ferr != nil {
			if ctx.Err() != nil {
				return nil // shutting down
			}
			return fmt.Errorf("reopening consumer %s: %w", c.id, ferr)
		}
		if serr = start(c.id); serr == nil {
			return nil
		}
	}
}
