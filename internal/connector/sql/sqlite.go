package sql

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// sqliteDB writes with one prepared INSERT per transaction. SQLite has one
// writer at a time, so the sink uses a single connection: writes, merges
// and bookkeeping queue for it, which is also the write gate (a merge's
// transaction keeps every insert out). The merge lock is in-process:
// SQLite pipelines are single-process.
type sqliteDB struct {
	*stdDB
	locks *sync.Map // lock name -> *sync.Mutex
}

// sqliteLocks is process-wide so two sinks on one file share the merge lock.
var sqliteLocks sync.Map

func newSQLite(ctx context.Context, path string) (sqliteDB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is on disk before Write returns (durable means
	// durable, also across power loss).
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	db, err := dbsql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return sqliteDB{}, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return sqliteDB{}, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	s := &stdDB{db: db, iso: dbsql.LevelDefault}
	s.d = &dialect{
		name:    "sqlite",
		q:       ansiQuote,
		keyText: "text",
		gate:    sqliteGate,
		insertIgnore: func(table, cols, values, keys string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO NOTHING", table, cols, values, keys)
		},
		upsert: func(table, cols, values, keys, col string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO UPDATE SET %s = excluded.%s", table, cols, values, keys, col, col)
		},
		columnType: sqliteColumnType,
	}
	s.insert = func(ctx context.Context, tx *dbsql.Tx, t tableName, cols []string, rows [][]any) error {
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+s.d.q.table(t)+" ("+s.d.q.list(cols)+") VALUES "+placeholders(len(cols)))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			if _, err := stmt.ExecContext(ctx, r...); err != nil {
				return err
			}
		}
		return nil
	}
	return sqliteDB{stdDB: s, locks: &sqliteLocks}, nil
}

// sqliteGate: the single connection already serialises writers and merges.
func sqliteGate(ctx context.Context, tx txn, bk *bookkeeping, _ bool) (int64, error) {
	n, ok, err := queryInt(ctx, tx.query, fmt.Sprintf("SELECT batch FROM %s WHERE pipeline = ?", bk.state), bk.pipeline)
	if err == nil && !ok {
		err = fmt.Errorf("no row for pipeline %s in %s", bk.pipeline, bk.state)
	}
	return n, err
}

// sqliteSession holds no connection of its own (there is one); its lock
// is a mutex.
type sqliteSession struct {
	s    sqliteDB
	held *sync.Mutex
}

func (s sqliteDB) session(context.Context) (session, error) {
	return &sqliteSession{s: s}, nil
}

func (ss *sqliteSession) tryLock(_ context.Context, name string) (bool, error) {
	m, _ := ss.s.locks.LoadOrStore(name, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	if !mu.TryLock() {
		return false, nil
	}
	ss.held = mu
	return true, nil
}

func (ss *sqliteSession) unlock(context.Context, string) error {
	if ss.held != nil {
		ss.held.Unlock()
		ss.held = nil
	}
	return nil
}

func (ss *sqliteSession) begin(ctx context.Context) (txn, error) { return ss.s.begin(ctx) }

func (ss *sqliteSession) close() { _ = ss.unlock(context.Background(), "") }

func (s sqliteDB) adapter(c *column) func(any) any {
	switch c.kind {
	case kindTime:
		return func(v any) any {
			d := v.(time.Duration)
			return fmt.Sprintf("%02d:%02d:%02d.%06d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, d.Microseconds()%1e6)
		}
	case kindDate:
		return func(v any) any { return v.(time.Time).Format("2006-01-02") }
	}
	return nil
}

func (s sqliteDB) classify(err error) errorClass {
	return classifyError(err)
}
