package sql

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPool is a small bounded pool of pgx connections. (pgxpool would need a
// module this build does not carry; the sink needs little: a bound,
// reuse, and dropping connections that broke.)
type pgPool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{} // one token per connection in use or opening
	open atomic.Int64  // connections open: pooled, idle or in use, and sessions

	mu   sync.Mutex
	idle []*pgx.Conn
}

func newPgPool(cfg *pgx.ConnConfig, max int) *pgPool {
	return &pgPool{cfg: cfg, sem: make(chan struct{}, max)}
}

// acquire returns an idle connection or opens one, waiting while max are
// in use.
func (p *pgPool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if !c.IsClosed() {
			return c, nil
		}
		p.open.Add(-1)
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// dial opens a connection, counted in open until hangUp (outside the
// bound: the merge session uses it too).
func (p *pgPool) dial(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return nil, err
	}
	p.open.Add(1)
	return c, nil
}

// hangUp closes a connection dial opened.
func (p *pgPool) hangUp(c *pgx.Conn) {
	closeConn(c)
	p.open.Add(-1)
}

// release gives c back, or closes it when it is broken or still inside a
// transaction.
func (p *pgPool) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		p.hangUp(c)
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes c for good (after an error that may have left it in an
// unknown state).
func (p *pgPool) discard(c *pgx.Conn) {
	p.hangUp(c)
	<-p.sem
}

// closeIdle closes the idle connections; the pool stays open.
func (p *pgPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.hangUp(c)
	}
}

func (p *pgPool) close() { p.closeIdle() }

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
