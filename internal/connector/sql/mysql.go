package sql

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// newMySQL is a MySQL or MariaDB database, not yet connected (connect
// does that, so New can wait for a server that is not up yet). Rows go in
// as multi-row INSERTs with client-side parameter interpolation (one round
// trip per statement), chunked to stay under the server's
// max_allowed_packet.
//
// Write gate: the pipeline's row in sluice_merge_state, read LOCK IN SHARE
// MODE by writes and FOR UPDATE by merges and exact writes. InnoDB queues
// a new shared request behind a waiting exclusive one, so merges are not
// starved. The merge lock is GET_LOCK, released by the server when the
// holder's connection ends.
//
// Deadlines (deadline.go): database/sql gives COMMIT no context, so the
// driver's own I/O timeouts bound every round trip instead: readTimeout
// and writeTimeout are statement_timeout on the pool's connections and
// merge.timeout on the merge session's, unless the DSN sets them. Past
// one the driver closes the connection and database/sql drops it. A write
// waiting at the gate for a long merge is bounded by statement_timeout
// here: it is retried until the merge ends.
func newMySQL(dsn string, maxConns int, lim limits) (*mysqlDB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing the mysql dsn: %w", err)
	}
	cfg.InterpolateParams = true
	cfg.MaxAllowedPacket = 0 // ask the server
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// A pause-mode merge holds the gate for as long as it runs; writers
	// wait for it rather than fail after InnoDB's default 50 s.
	if _, ok := cfg.Params["innodb_lock_wait_timeout"]; !ok {
		cfg.Params["innodb_lock_wait_timeout"] = "3600"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	db, err := openMySQL(cfg, lim.statement.d, maxConns)
	if err != nil {
		return nil, err
	}
	sessions, err := openMySQL(cfg, lim.merge.d, 1)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &stdDB{db: db, iso: dbsql.LevelReadCommitted}
	m := &mysqlDB{stdDB: s, sessions: sessions, address: cfg.Addr}
	s.d = &dialect{
		name:    "mysql",
		q:       backtickQuote,
		keyText: "varchar(255)",
		gate:    mysqlGate,
		insertIgnore: func(table, cols, values, keys string) string {
			first, _, _ := strings.Cut(keys, ",")
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON DUPLICATE KEY UPDATE %s = %s", table, cols, values, first, first)
		},
		upsert: func(table, cols, values, keys, col string) string {
			return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON DUPLICATE KEY UPDATE %s = VALUES(%s)", table, cols, values, col, col)
		},
		forUpdate:  " FOR UPDATE",
		columnType: mysqlColumnType,
	}
	s.insert = func(ctx context.Context, tx *dbsql.Tx, t tableName, cols []string, rows [][]any) error {
		return mysqlInsert(ctx, tx, s.d.q.table(t)+" ("+s.d.q.list(cols)+")", len(cols), rows, m.limit)
	}
	return m, nil
}

// openMySQL is a pool of at most max connections whose reads and writes
// time out after d (0: none), unless cfg sets its own timeouts.
func openMySQL(cfg *mysql.Config, d time.Duration, max int) (*dbsql.DB, error) {
	cfg = cfg.Clone()
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = d
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = d
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql dsn: %w", err)
	}
	db := dbsql.OpenDB(conn)
	db.SetMaxOpenConns(max)
	db.SetMaxIdleConns(max)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

type mysqlDB struct {
	*stdDB
	sessions *dbsql.DB // the merge session's pool, under merge.timeout
	address  string    // host:port or socket path, for logs
	limit    int       // bytes per INSERT statement; set by connect, before any write
}

func (m *mysqlDB) openConnections() int {
	return m.db.Stats().OpenConnections + m.sessions.Stats().OpenConnections
}

func (m *mysqlDB) close() {
	m.stdDB.close()
	_ = m.sessions.Close()
}

// connect reads max_allowed_packet, which bounds the size of the sink's
// INSERT statements.
func (m *mysqlDB) connect(ctx context.Context) error {
	var packet int64
	if err := m.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		return wrap(m, "connecting to mysql "+m.address, err)
	}
	// Leave room for the statement text and the protocol's own overhead.
	m.limit = max(int(packet)-64<<10, 64<<10)
	return nil
}

func (m *mysqlDB) addr() string { return m.address }

func mysqlGate(ctx context.Context, tx txn, bk *bookkeeping, exclusive bool) (int64, error) {
	lock := " LOCK IN SHARE MODE"
	if exclusive {
		lock = " FOR UPDATE"
	}
	n, ok, err := queryInt(ctx, tx.query, fmt.Sprintf("SELECT batch FROM %s WHERE pipeline = ?%s", bk.state, lock), bk.pipeline)
	if err == nil && !ok {
		err = fmt.Errorf("no row for pipeline %s in %s", bk.pipeline, bk.state)
	}
	return n, err
}

// mysqlInsert sends rows as INSERT statements of at most limit bytes.
func mysqlInsert(ctx context.Context, tx *dbsql.Tx, into string, ncols int, rows [][]any, limit int) error {
	head := "INSERT INTO " + into + " VALUES "
	one := placeholders(ncols)
	var args []any
	var sql strings.Builder
	size := len(head)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, sql.String(), args...)
		args = args[:0]
		sql.Reset()
		size = len(head)
		return err
	}
	for _, r := range rows {
		n := rowSize(r)
		if len(args) > 0 && size+n > limit {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(args) == 0 {
			sql.WriteString(head)
		} else {
			sql.WriteString(", ")
		}
		sql.WriteString(one)
		args = append(args, r...)
		size += n
	}
	return flush()
}

// rowSize bounds a row's size once interpolated: strings may double when
// escaped.
func rowSize(r []any) int {
	n := 4
	for _, v := range r {
		switch x := v.(type) {
		case string:
			n += 2*len(x) + 4
		case []byte:
			n += 2*len(x) + 12
		default:
			n += 32
		}
	}
	return n
}

func mysqlLock(ctx context.Context, c *dbsql.Conn, name string) (bool, error) {
	var got *int64
	if err := c.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
		return false, err
	}
	return got != nil && *got == 1, nil
}

func mysqlUnlock(ctx context.Context, c *dbsql.Conn, name string) error {
	_, err := c.ExecContext(ctx, "DO RELEASE_LOCK(?)", name)
	return err
}

func (m *mysqlDB) session(ctx context.Context) (session, error) {
	c, err := m.sessions.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &connTxnSession{conn: c, iso: m.iso, insert: m.insert, lock: mysqlLock, unlk: mysqlUnlock}, nil
}

func (m *mysqlDB) adapter(c *column) func(any) any {
	switch c.kind {
	case kindTime:
		return func(v any) any {
			d := v.(time.Duration)
			return fmt.Sprintf("%02d:%02d:%02d.%06d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, d.Microseconds()%1e6)
		}
	case kindBool:
		return func(v any) any {
			if v.(bool) {
				return int64(1)
			}
			return int64(0)
		}
	}
	return nil
}

func (m *mysqlDB) classify(err error) errorClass {
	return classifyError(err)
}
