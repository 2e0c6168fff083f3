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
// When ctx ends before every consumer is back, Reconfigure returns an
// error; a consumer that was already stopped still rejoins, owned by Run.
func (p *Pipeline) Reconfigure(ctx context.Context, changes map[string]any) error {
	src, ok := p.opts.Source.(connector.Reconfigurable)
	if !ok {
		return ErrNotReconfigurable
	}
	p.membership.Lock()
	defer p.membership.Unlock()
	if err := src.SetProperties(changes); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProperties, err)
	}
	n := src.MaxPollRecords()
	if n <= 0 {
		n = p.opts.BatchRecords
	}
	p.maxPoll.Store(int64(n))

	p.mu.Lock()
	live := p.state == StateRunning || p.state == StatePaused
	ids := append([]string(nil), p.order...)
	p.mu.Unlock()
	if !live {
		return nil // consumers opened by Run use the new properties
	}
	p.log.Info("changing source properties: restarting consumers one by one", "changes", changes, "consumers", len(ids))
	for _, id := range ids {
		if err := p.restartConsumer(ctx, id); err != nil {
			return fmt.Errorf("restarting consumer %s with the new properties: %w", id, err)
		}
	}
	p.log.Info("source properties changed", "max_poll_records", n)
	return nil
}

// restartConsumer stops consumer id and waits until Run has opened its
// replacement (see reopenIfRestarting). Callers hold membership.
func (p *Pipeline) restartConsumer(ctx context.Context, id string) error {
	reopened := make(chan struct{})
	p.mu.Lock()
	c, ok := p.consumers[id]
	if ok {
		if p.restarts == nil {
			p.restarts = map[*consumer]chan struct{}{}
		}
		p.restarts[c] = reopened
	}
	p.mu.Unlock()
	if !ok {
		return nil // it stopped meanwhile: nothing to restart
	}
	c.stop()
	select {
	case <-reopened:
	case <-ctx.Done():
		return fmt.Errorf("still finishing its batches; it rejoins when done: %w", ctx.Err())
	}
	p.mu.Lock()
	next, back := p.consumers[id]
	p.mu.Unlock()
	if !back || next == c {
		return errors.New("it stopped and was not reopened: the pipeline is stopping or failed")
	}
	return nil
}

// reopenIfRestarting runs in the goroutine Run gave consumer c, after c has
// stopped with err. When Reconfigure asked for a restart, it opens the
// replacement under the same id, retrying with backoff while the source is
// unreachable, until ctx (Run's) ends. Being owned by Run, the restart
// completes even if the operator's request gave up waiting.
func (p *Pipeline) reopenIfRestarting(ctx context.Context, c *consumer, err error, start func(string) error) {
	p.mu.Lock()
	reopened, ok := p.restarts[c]
	delete(p.restarts, c)
	p.mu.Unlock()
	if !ok {
		return
	}
	defer close(reopened)
	if err != nil {
		return // the pipeline is failing: Run reports err
	}
	bo := newBackoff()
	for ctx.Err() == nil {
		serr := start(c.id)
		if serr == nil {
			return
		}
		p.log.Warn("reopening consumer with new properties; retrying", "consumer", c.id, "attempt", bo.attempt+1, "err", serr)
		if bo.wait(ctx) != nil {
			return
		}
	}
}
