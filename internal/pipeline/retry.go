package pipeline

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is exponential with full jitter: 100ms doubling to 10s.
type backoff struct {
	attempt int
	min     time.Duration
	max     time.Duration
}

func newBackoff() backoff { return backoff{min: 100 * time.Millisecond, max: 10 * time.Second} }

func (b *backoff) next() time.Duration {
	d := b.min << min(b.attempt, 16)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.attempt++
	// Keep at least half the step so retries do not hammer a server that
	// is down, and jitter the rest so many consumers spread out.
	return d/2 + rand.N(d/2+1)
}

// wait sleeps for the next backoff step or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
