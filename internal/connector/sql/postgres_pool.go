package sql

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPool is a small bounded pool of pgx connections. (pgxpool would need a
// module this build does not carry; the sink needs little: a bound,
// reuse, and dropping connections that broke.)
type pgPool struct {
	cfg *pgx.ConnConfig
	sem chan struct{} // one token per open or opening connection

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
	}
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return c, nil
}

// release gives c back, or closes it when it is broken or still inside a
// transaction.
func (p *pgPool) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		closeConn(c)
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes c for good (after an error that may have left it in an
// unknown state).
func (p *pgPool) discard(c *pgx.Conn) {
	closeConn(c)
	<-p.sem
}

func (p *pgPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
