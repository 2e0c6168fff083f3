package sql

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// postgres writes staging rows with COPY (pgx CopyFrom, binary format).
//
// Write gate: a transaction-scoped advisory lock per pipeline, taken
// shared by every write and exclusive by a merge (and by exact writes,
// which must count). The lock manager queues requests in order, so a
// waiting merge is not starved by a stream of writes. The merge lock is a
// session advisory lock, released by the server if the process dies.
type postgres struct {
	d     *dialect
	pool  *pgPool
	cfg   *pgx.ConnConfig
	types *copyTypes // of COPY targets, shared by every connection
	lim   limits     // deadlines of round trips (deadline.go)
}

// newPostgres parses dsn without connecting: connect makes the first
// connection, so New can wait for a server that is not up yet.
func newPostgres(dsn string, maxConns int, lim limits) (*postgres, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing the postgres dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "sluice"
	}
	p := &postgres{pool: newPgPool(cfg, maxConns), cfg: cfg, types: &copyTypes{}, lim: lim}
	p.d = &dialect{
		name:    "postgres",
		q:       ansiQuote,
		dollar:  true,
		keyText: "text",
		gate:    pgGate,
		insertIgnore: func(table, cols, values, keys string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO NOTHING", table, cols, values, keys)
		},
		upsert: func(table, cols, values, keys, col string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s", table, cols, values, keys, col, col)
		},
		forUpdate:  " FOR UPDATE",
		columnType: pgColumnType,
	}
	return p, nil
}

func (p *postgres) connect(ctx context.Context) error {
	c, err := p.pool.acquire(ctx)
	if err != nil {
		return wrap(p, "connecting to postgres "+p.addr(), err)
	}
	p.pool.release(c)
	return nil
}

func (p *postgres) addr() string { return net.JoinHostPort(p.cfg.Host, strconv.Itoa(int(p.cfg.Port))) }

func (p *postgres) dialect() *dialect { return p.d }

func (p *postgres) close() { p.pool.close() }

func (p *postgres) openConnections() int { return int(p.pool.open.Load()) }

func pgGate(ctx context.Context, tx txn, bk *bookkeeping, exclusive bool) (int64, error) {
	key := lockKeyOf(bk.lockName("gate"))
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	// Two statements: the second one's snapshot must be taken after the
	// lock is held, so it sees the batch a merge just opened.
	if err := tx.exec(ctx, "SELECT "+fn+"(?)", key); err != nil {
		return 0, fmt.Errorf("taking the write gate: %w", err)
	}
	n, ok, err := queryInt(ctx, tx.query, fmt.Sprintf("SELECT batch FROM %s WHERE pipeline = ?", bk.state), bk.pipeline)
	if err == nil && !ok {
		err = fmt.Errorf("no row for pipeline %s in %s", bk.pipeline, bk.state)
	}
	return n, err
}

func (p *postgres) begin(ctx context.Context) (txn, error) {
	c, err := p.pool.acquire(ctx)
	if err != nil {
		return nil, err
	}
	var tx pgx.Tx
	err = p.lim.statement.do(ctx, func(ctx context.Context) (err error) {
		tx, err = c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		return err
	})
	if err != nil {
		p.pool.discard(c)
		p.forgetIdle(err)
		return nil, err
	}
	return &pgTxn{d: p.d, types: p.types, tx: tx, lim: p.lim.statement, gateLim: p.lim.merge,
		done: func() { p.pool.release(c) }, timedOut: p.forgetIdle}, nil
}

// forgetIdle closes the idle connections after a round trip timed out:
// they most likely went the same dead way (a failover, a NAT box that
// forgot its flows), and each would cost a deadline to find out.
func (p *postgres) forgetIdle(err error) {
	if errors.Is(err, errNoAnswer) {
		p.pool.closeIdle()
	}
}

func (p *postgres) query(ctx context.Context, q string, args ...any) (rowsIter, error) {
	c, err := p.pool.acquire(ctx)
	if err != nil {
		return nil, err
	}
	// The deadline covers reading the rows too: it ends with Close.
	bounded, cancel := p.lim.statement.within(ctx)
	rows, err := c.Query(bounded, p.d.rebind(q), args...)
	if err != nil {
		err = p.lim.statement.explain(ctx, bounded, err)
		cancel()
		p.pool.release(c)
		p.forgetIdle(err)
		return nil, err
	}
	return &pgRows{Rows: rows, lim: p.lim.statement, ctx: ctx, bounded: bounded, done: func() {
		cancel()
		p.pool.release(c)
	}}, nil
}

func (p *postgres) session(ctx context.Context) (session, error) {
	c, err := p.pool.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &pgSession{d: p.d, types: p.types, c: c, pool: p.pool, lim: p.lim}, nil
}

type pgTxn struct {
	d        *dialect
	types    *copyTypes
	tx       pgx.Tx
	lim      limit       // of each round trip
	gateLim  limit       // of the write gate, which waits for merges
	done     func()      // gives the connection back, once
	timedOut func(error) // told every error of a round trip; nil: none
}

// do runs one round trip of the transaction under its deadline.
func (t *pgTxn) do(ctx context.Context, f func(context.Context) error) error {
	err := t.lim.do(ctx, f)
	if err != nil && t.timedOut != nil {
		t.timedOut(err)
	}
	return err
}

// patient is the same transaction under the deadline of the write gate,
// for statements only: commit and rollback belong to t.
func (t *pgTxn) patient() txn {
	p := *t
	p.lim = t.gateLim
	p.done = nil
	return &p
}

func (t *pgTxn) exec(ctx context.Context, q string, args ...any) error {
	return t.do(ctx, func(ctx context.Context) error {
		_, err := t.tx.Exec(ctx, t.d.rebind(q), args...)
		return err
	})
}

func (t *pgTxn) query(ctx context.Context, q string, args ...any) (rowsIter, error) {
	bounded, cancel := t.lim.within(ctx)
	rows, err := t.tx.Query(bounded, t.d.rebind(q), args...)
	if err != nil {
		cancel()
		err = t.lim.explain(ctx, bounded, err)
		if t.timedOut != nil {
			t.timedOut(err)
		}
		return nil, err
	}
	return &pgRows{Rows: rows, lim: t.lim, ctx: ctx, bounded: bounded, done: cancel}, nil
}

func (t *pgTxn) insert(ctx context.Context, table tableName, cols []string, rows [][]any) error {
	return t.do(ctx, func(ctx context.Context) error {
		return copyRows(ctx, t.tx.Conn(), t.types, table, cols, rows)
	})
}

func (t *pgTxn) commit(ctx context.Context) error {
	err := t.do(ctx, t.tx.Commit)
	t.finish()
	return err
}

// rollback is bounded too: it may be the first round trip on a
// connection that went dead since the last one.
func (t *pgTxn) rollback(ctx context.Context) error {
	if t.done == nil {
		return nil
	}
	err := t.do(ctx, t.tx.Rollback)
	t.finish()
	return err
}

func (t *pgTxn) finish() {
	if t.done != nil {
		t.done()
		t.done = nil
	}
}

// pgRows reads a result under the deadline of its query.
type pgRows struct {
	pgx.Rows
	lim     limit
	ctx     context.Context // the caller's
	bounded context.Context // ctx under lim
	done    func()
}

func (r *pgRows) Err() error { return r.lim.explain(r.ctx, r.bounded, r.Rows.Err()) }

func (r *pgRows) Close() {
	r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
}

// pgSession is the merge session: its locks take statement_timeout, the
// statements of its transactions (the merge) merge.timeout.
type pgSession struct {
	d     *dialect
	types *copyTypes
	c     *pgx.Conn
	pool  *pgPool // counts c among the open connections
	lim   limits
}

func (s *pgSession) tryLock(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.lim.statement.do(ctx, func(ctx context.Context) error {
		return s.c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKeyOf(name)).Scan(&ok)
	})
	return ok, err
}

func (s *pgSession) unlock(ctx context.Context, name string) error {
	return s.lim.statement.do(ctx, func(ctx context.Context) error {
		_, err := s.c.Exec(ctx, "SELECT pg_advisory_unlock($1)", lockKeyOf(name))
		return err
	})
}

func (s *pgSession) begin(ctx context.Context) (txn, error) {
	var tx pgx.Tx
	err := s.lim.statement.do(ctx, func(ctx context.Context) (err error) {
		tx, err = s.c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pgTxn{d: s.d, types: s.types, tx: tx, lim: s.lim.merge, gateLim: s.lim.merge, done: func() {}}, nil
}

func (s *pgSession) close() { s.pool.hangUp(s.c) }

// adapter: decimals stay the text toDecimal returns, which copyRows
// encodes itself (see appendCopyValue).
func (p *postgres) adapter(c *column) func(any) any {
	switch c.kind {
	case kindTime:
		return func(v any) any {
			d := v.(time.Duration)
			return pgtype.Time{Microseconds: d.Microseconds(), Valid: true}
		}
	}
	return nil
}

// pgNumeric turns the plain decimal text toDecimal returns into a Numeric,
// for pgx to encode when copyRows does not (see appendCopyValue): what the
// sink gave pgx for every decimal before copyRows.
func pgNumeric(s string) any {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	whole, frac, _ := strings.Cut(s, ".")
	digits := whole + frac
	var n *big.Int
	if len(digits) <= 18 {
		i, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return s
		}
		n = big.NewInt(i)
	} else if n, _ = new(big.Int).SetString(digits, 10); n == nil {
		return s
	}
	if neg {
		n.Neg(n)
	}
	return pgtype.Numeric{Int: n, Exp: -int32(len(frac)), Valid: true}
}

func (p *postgres) classify(err error) errorClass {
	return classifyError(err)
}
