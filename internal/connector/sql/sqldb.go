package sql

import (
	"context"
	dbsql "database/sql"
)

// stdDB is what MySQL and SQLite share: a database/sql pool. Each dialect
// supplies its bulk insert and its session locks.
type stdDB struct {
	d      *dialect
	db     *dbsql.DB
	iso    dbsql.IsolationLevel
	insert func(ctx context.Context, tx *dbsql.Tx, t tableName, cols []string, rows [][]any) error
}

func (s *stdDB) dialect() *dialect { return s.d }

func (s *stdDB) begin(ctx context.Context) (txn, error) {
	tx, err := s.db.BeginTx(ctx, &dbsql.TxOptions{Isolation: s.iso})
	if err != nil {
		return nil, err
	}
	return &stdTxn{tx: tx, insertFn: s.insert}, nil
}

func (s *stdDB) query(ctx context.Context, q string, args ...any) (rowsIter, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{rows}, nil
}

func (s *stdDB) close() { _ = s.db.Close() }

func (s *stdDB) openConnections() int { return s.db.Stats().OpenConnections }

type stdTxn struct {
	tx       *dbsql.Tx
	insertFn func(ctx context.Context, tx *dbsql.Tx, t tableName, cols []string, rows [][]any) error
}

func (t *stdTxn) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t *stdTxn) query(ctx context.Context, q string, args ...any) (rowsIter, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{rows}, nil
}

func (t *stdTxn) insert(ctx context.Context, table tableName, cols []string, rows [][]any) error {
	return t.insertFn(ctx, t.tx, table, cols, rows)
}

func (t *stdTxn) commit(context.Context) error { return t.tx.Commit() }

func (t *stdTxn) rollback(context.Context) error {
	err := t.tx.Rollback()
	if err == dbsql.ErrTxDone {
		return nil
	}
	return err
}

type stdRows struct{ *dbsql.Rows }

func (r stdRows) Close() { _ = r.Rows.Close() }

// connTxnSession is a session on a dedicated *sql.Conn; lock and unlock
// come from the dialect.
type connTxnSession struct {
	conn   *dbsql.Conn
	iso    dbsql.IsolationLevel
	insert func(ctx context.Context, tx *dbsql.Tx, t tableName, cols []string, rows [][]any) error
	lock   func(ctx context.Context, c *dbsql.Conn, name string) (bool, error)
	unlk   func(ctx context.Context, c *dbsql.Conn, name string) error
}

func (s *connTxnSession) tryLock(ctx context.Context, name string) (bool, error) {
	return s.lock(ctx, s.conn, name)
}

func (s *connTxnSession) unlock(ctx context.Context, name string) error {
	return s.unlk(ctx, s.conn, name)
}

func (s *connTxnSession) begin(ctx context.Context) (txn, error) {
	tx, err := s.conn.BeginTx(ctx, &dbsql.TxOptions{Isolation: s.iso})
	if err != nil {
		return nil, err
	}
	return &stdTxn{tx: tx, insertFn: s.insert}, nil
}

func (s *connTxnSession) close() { _ = s.conn.Close() }
