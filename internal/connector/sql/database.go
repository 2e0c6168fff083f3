package sql

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// database is one of PostgreSQL, MySQL/MariaDB or SQLite: its connections,
// its bulk insert path and its SQL spelling. The sink's logic (offsets,
// batches, merges) is written once against it.
type database interface {
	dialect() *dialect
	// begin starts a read-committed transaction on a pooled connection.
	begin(ctx context.Context) (txn, error)
	// query runs a read outside a transaction.
	query(ctx context.Context, q string, args ...any) (rowsIter, error)
	// session opens a dedicated connection for merges: session-level locks
	// (the merge lock) live as long as it does.
	session(ctx context.Context) (session, error)
	// describe returns the table's columns, or nil when it does not exist.
	describe(ctx context.Context, t tableName) (*table, error)
	// adapter returns the final conversion for a column (nil: none).
	adapter(c *column) func(any) any
	// classify sorts an error: data (the rows are bad), permanent
	// (configuration, permissions, missing objects) or transient; see
	// errors.go.
	classify(err error) errorClass
	// openConnections counts the connections open now, pooled and
	// dedicated (sluice_sink_connections).
	openConnections() int
	close()
}

// server is a database behind the network (PostgreSQL, MySQL), which may
// not be up yet when the sink starts; SQLite, a local file, is not one. Its
// constructor does not connect: New calls connect until the server answers.
type server interface {
	// connect makes the first round trip, and reads what the sink needs
	// from the server.
	connect(ctx context.Context) error
	// addr is the server's host:port (or socket path) for logs: never
	// credentials, which a DSN may hold.
	addr() string
}

// txn is one transaction.
type txn interface {
	exec(ctx context.Context, q string, args ...any) error
	query(ctx context.Context, q string, args ...any) (rowsIter, error)
	// insert writes rows into t (columns cols) by the dialect's bulk path.
	insert(ctx context.Context, t tableName, cols []string, rows [][]any) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// session is a dedicated connection.
type session interface {
	// tryLock takes the pipeline's merge lock if it is free.
	tryLock(ctx context.Context, name string) (bool, error)
	unlock(ctx context.Context, name string) error
	begin(ctx context.Context) (txn, error)
	close()
}

// rowsIter is the common part of *sql.Rows and pgx.Rows.
type rowsIter interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// dialect is how a database spells what the sink's generic SQL needs.
type dialect struct {
	name   string
	q      quoter
	dollar bool // $1 placeholders (PostgreSQL) instead of ?

	keyText string // a text type usable in a primary key
	// gate reads the open staging batch while holding the pipeline's write
	// gate: shared for ordinary writes, exclusive for exact writes and
	// merges (see write.go).
	gate func(ctx context.Context, tx txn, bk *bookkeeping, exclusive bool) (int64, error)
	// insertIgnore and upsert spell "insert unless the key exists" and
	// "insert or overwrite col".
	insertIgnore func(table, cols, values, keys string) string
	upsert       func(table, cols, values, keys, col string) string
	// forUpdate is the row-locking suffix of a SELECT ("" when the
	// database has one writer anyway).
	forUpdate string
	// columnType is the type create_table gives a kind.
	columnType func(c newColumn) string
}

// rebind turns ? placeholders into $n for PostgreSQL. The sink's own SQL
// never has a literal question mark.
func (d *dialect) rebind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// placeholders returns "(?, ?, ?)" for n columns.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// isContextErr reports a caller's cancellation, which is never the
// database's fault.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func queryInt(ctx context.Context, q func(context.Context, string, ...any) (rowsIter, error), sql string, args ...any) (int64, bool, error) {
	rows, err := q(ctx, sql, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, false, rows.Err()
	}
	var n *int64
	if err := rows.Scan(&n); err != nil {
		return 0, false, err
	}
	if n == nil {
		return 0, false, rows.Err()
	}
	return *n, true, rows.Err()
}
