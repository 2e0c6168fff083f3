package sql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// A half-open connection (the server restarted or failed over, a NAT box
// or load balancer forgot the flow) never answers and never resets: a
// statement sent on it waits forever, and so would its partition. TCP
// keepalive does not end it while a request is unacknowledged, nor at all
// behind a middlebox that still acknowledges. So every round trip of the
// sink to a database server runs under a deadline; past it the driver
// closes the connection (pgx does on a cancelled context), the pool drops
// it, and the error is transient: the write is retried on a fresh
// connection.
//
// Exactly-once stays exactly once: the retry locks the offset rows of its
// partitions (FOR UPDATE) before it reads them, and the transaction that
// timed out held those locks until it ended. So the retry either finds
// that transaction committed, its offsets with it (the COMMIT reached the
// server, its answer did not), and skips its rows (notYetWritten), or
// finds it rolled back and writes them. While the server still holds the
// dead session (it has not noticed the connection is gone), the retry
// waits for its locks and times out again: retried, not stalled for good.

// limit is the deadline of one round trip and the setting that gives it,
// for the error message.
type limit struct {
	d   time.Duration // 0: none
	key string        // statement_timeout, merge.timeout
}

// limits are the deadlines of a database's round trips.
type limits struct {
	// statement bounds each statement, COPY, BEGIN, COMMIT and ROLLBACK.
	statement limit
	// merge bounds each statement of a merge's transaction, and the write
	// gate, which waits while a merge holds it.
	merge limit
}

// limitsOf reads the deadlines from the sink's config. Zero (a library
// caller that did not load a file) is no deadline.
func limitsOf(c config.SQLSink) limits {
	l := limits{
		statement: limit{c.StatementTimeout, "statement_timeout"},
		merge:     limit{c.StatementTimeout, "statement_timeout"},
	}
	if c.Merge != nil {
		l.merge = limit{c.Merge.Timeout, "merge.timeout"}
	}
	return l
}

// errNoAnswer is in the chain of an error from a round trip that hit its
// deadline (as is context.DeadlineExceeded, which classifies it
// transient).
var errNoAnswer = errors.New("no answer from the database")

// within bounds ctx by l.
func (l limit) within(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.d)
}

// explain says that err came from l's deadline when bounded (ctx bounded
// by l) ended before ctx did: a caller's cancellation stays as it is.
func (l limit) explain(ctx, bounded context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !errors.Is(bounded.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w within %s (%s); the connection was closed: %w", errNoAnswer, l.d, l.key, err)
}

// do runs one round trip under l.
func (l limit) do(ctx context.Context, f func(context.Context) error) error {
	bounded, cancel := l.within(ctx)
	defer cancel()
	return l.explain(ctx, bounded, f(bounded))
}

// patiently returns tx with the deadline of the write gate, for taking
// the gate: it waits while a merge holds it. Only PostgreSQL has one;
// MySQL's drivers bound every read the same way (see newMySQL).
func patiently(tx txn) txn {
	if p, ok := tx.(interface{ patient() txn }); ok {
		return p.patient()
	}
	return tx
}
