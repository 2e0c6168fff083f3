package pubsub

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/sluice-dev/sluice/internal/connector"
)

// reader is one subscriber. Its Receive callbacks hand records to Read
// through out, whose capacity is the subscriber's flow-control limit, so
// a callback waits only when the engine has stopped reading (its own
// in-flight limit), and Pub/Sub then stops delivering.
type reader struct {
	src    *Source
	member string
	sub    *pubsub.Subscriber
	cancel context.CancelFunc
	done   chan struct{} // closed when the receive loop has returned
	out    chan *connector.Record
	// stopped holds the error of the latest Receive that returned, for
	// Read to return once.
	stopped chan error

	mu      sync.Mutex
	pending map[*pubsub.Message]struct{} // delivered, not yet acked
}

// receive runs Receive until the reader closes. Receive returns early only
// on an error the client does not retry (the subscription was deleted,
// permissions were revoked): that is shown in the source's health, handed
// to Read, which returns it once (the engine retries it as a transient
// read failure, up to max_retry_time), and Receive is tried again with
// backoff, so that a subscription that is back is read again.
func (r *reader) receive(ctx context.Context) {
	defer close(r.done)
	defer r.src.readers.Add(-1)
	wait := time.Second
	for {
		err := r.sub.Receive(ctx, r.deliver)
		if ctx.Err() != nil {
			return
		}
		r.src.health.receiveStopped(err)
		if err != nil {
			// The engine logs it when Read returns it. Only this
			// goroutine sends: a stale error Read has not taken yet
			// gives way to the latest.
			select {
			case <-r.stopped:
			default:
			}
			r.stopped <- fmt.Errorf("subscriber stopped: %w", err)
		} else {
			r.src.log.Warn("pubsub subscriber stopped; restarting", "consumer", r.member, "subscription", r.src.cfg.SubscriptionPath(), "in", wait)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// deliver is the Receive callback.
func (r *reader) deliver(ctx context.Context, m *pubsub.Message) {
	rec := r.src.record(m)
	r.mu.Lock()
	r.pending[m] = struct{}{}
	r.mu.Unlock()
	select {
	case r.out <- rec:
	case <-ctx.Done():
		r.settle(m, false)
	}
}

// settle acks or nacks m once.
func (r *reader) settle(m *pubsub.Message, ack bool) {
	r.mu.Lock()
	_, ok := r.pending[m]
	delete(r.pending, m)
	r.mu.Unlock()
	if !ok {
		return
	}
	if ack {
		m.Ack()
	} else {
		m.Nack()
	}
}

// Read implements connector.Reader.
func (r *reader) Read(ctx context.Context, max int) ([]*connector.Record, error) {
	var recs []*connector.Record
	select {
	case rec := <-r.out:
		recs = append(recs, rec)
	case <-ctx.Done():
		return nil, ctx.Err()
	case err := <-r.stopped:
		return nil, err
	case <-r.done:
		return nil, errClosed
	}
	for max <= 0 || len(recs) < max {
		select {
		case rec := <-r.out:
			recs = append(recs, rec)
		default:
			return recs, nil
		}
	}
	return recs, nil
}

// Ack implements connector.Reader: each message is acked to Pub/Sub (acks
// are per message, in any order).
func (r *reader) Ack(records []*connector.Record) {
	for _, rec := range records {
		if m, ok := rec.Origin.(*pubsub.Message); ok {
			r.settle(m, true)
		}
	}
}

// Close implements connector.Reader: every message not acked by now is
// nacked, for Pub/Sub to deliver again, and the subscriber stops.
func (r *reader) Close(ctx context.Context) error {
	r.mu.Lock()
	left := slices.Collect(maps.Keys(r.pending))
	r.mu.Unlock()
	for _, m := range left {
		r.settle(m, false)
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
