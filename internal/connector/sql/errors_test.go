package sql

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-dev/sluice/internal/connector"
)

var classNames = map[errorClass]string{errTransient: "transient", errData: "data", errPermanent: "permanent"}

func TestClassifyPostgresErrors(t *testing.T) {
	for _, tc := range []struct {
		code, what string
		want       errorClass
	}{
		{"54011", "tables can have at most 1600 columns", errData},
		{"54000", "row is too big", errData},
		{"22001", "value too long for type character varying(3)", errData},
		{"22003", "numeric field overflow", errData},
		{"22P02", "invalid input syntax for type integer", errData},
		{"23505", "duplicate key value violates unique constraint", errData},
		{"23502", "null value in column violates not-null constraint", errData},
		{"P0001", "a trigger raised an exception", errData},
		{"42501", "permission denied for table t", errPermanent},
		{"42P01", "relation does not exist", errPermanent},
		{"42601", "syntax error at or near", errPermanent},
		{"42883", "procedure merge_films() does not exist", errPermanent},
		{"42703", "column does not exist", errPermanent},
		{"28P01", "password authentication failed", errPermanent},
		{"3D000", "database does not exist", errPermanent},
		{"53400", "temporary file size exceeds temp_file_limit", errPermanent},
		{"54001", "statement is too complex", errPermanent},
		{"40002", "deferred constraint violated at commit", errPermanent},
		{"0A000", "feature not supported", errPermanent},
		{"08006", "connection failure", errTransient},
		{"57P01", "terminating connection due to administrator command", errTransient},
		{"57P03", "the database system is starting up", errTransient},
		{"57014", "canceling statement due to statement timeout", errTransient},
		{"40001", "could not serialize access", errTransient},
		{"40P01", "deadlock detected", errTransient},
		{"53100", "could not extend file: No space left on device", errTransient},
		{"53300", "too many connections", errTransient},
		{"55P03", "could not obtain lock", errTransient},
		{"25006", "cannot execute INSERT in a read-only transaction", errTransient},
		{"XX000", "internal error", errTransient},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := fmt.Errorf("writing rows: %w", &pgconn.PgError{Code: tc.code, Message: tc.what})
			if got := classifyError(err); got != tc.want {
				t.Fatalf("%s (%s) is %s, want %s", tc.code, tc.what, classNames[got], classNames[tc.want])
			}
		})
	}
}

func TestClassifyMySQLErrors(t *testing.T) {
	for _, tc := range []struct {
		number uint16
		what   string
		want   errorClass
	}{
		{1118, "Row size too large (> 8126)", errData},
		{1117, "Too many columns", errData},
		{1005, "Can't create table `test`.`t` (errno: 185 \"Too many columns\")", errData},
		{1005, "Can't create table `test`.`t` (errno: 150 \"Foreign key constraint is incorrectly formed\")", errPermanent},
		{1406, "Data too long for column", errData},
		{1264, "Out of range value for column", errData},
		{1366, "Incorrect integer value", errData},
		{1062, "Duplicate entry", errData},
		{1048, "Column cannot be null", errData},
		{3140, "Invalid JSON text", errData},
		{4025, "CONSTRAINT failed", errData},
		{1153, "Got a packet bigger than 'max_allowed_packet' bytes", errData},
		{1142, "INSERT command denied to user", errPermanent},
		{1044, "Access denied for user to database", errPermanent},
		{1045, "Access denied for user (using password: YES)", errPermanent},
		{1146, "Table 'test.t' doesn't exist", errPermanent},
		{1064, "You have an error in your SQL syntax", errPermanent},
		{1305, "PROCEDURE test.merge_films does not exist", errPermanent},
		{1054, "Unknown column", errPermanent},
		{1049, "Unknown database", errPermanent},
		{1040, "Too many connections", errTransient},
		{1205, "Lock wait timeout exceeded", errTransient},
		{1213, "Deadlock found when trying to get lock", errTransient},
		{2013, "Lost connection to server during query", errTransient},
		{1927, "Connection was killed", errTransient},
		{1290, "The MariaDB server is running with the --read-only option", errTransient},
		{1021, "Disk full", errTransient},
	} {
		t.Run(fmt.Sprint(tc.number), func(t *testing.T) {
			err := fmt.Errorf("writing rows: %w", &mysql.MySQLError{Number: tc.number, Message: tc.what})
			if got := classifyError(err); got != tc.want {
				t.Fatalf("%d (%s) is %s, want %s", tc.number, tc.what, classNames[got], classNames[tc.want])
			}
		})
	}
	if got := classifyError(fmt.Errorf("writing rows: %w", mysql.ErrPktTooLarge)); got != errData {
		t.Errorf("a statement over max_allowed_packet is %s, want data (split down to the row)", classNames[got])
	}
}

// SQLite errors come from a real database: the driver's error type cannot
// be built outside it, and the messages are what the classifier reads.
func TestClassifySQLiteErrors(t *testing.T) {
	db, err := dbsql.Open("sqlite", filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, s := range []string{
		"CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, s TEXT CHECK (length(s) < 5))",
		"INSERT INTO t VALUES (1, 1, 'a')",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	wide := make([]string, 2001)
	for i := range wide {
		wide[i] = fmt.Sprintf("c%d INTEGER", i)
	}
	for _, tc := range []struct {
		name, stmt string
		want       errorClass
	}{
		{"too many columns on create", "CREATE TABLE w (" + strings.Join(wide, ", ") + ")", errData},
		{"duplicate key", "INSERT INTO t VALUES (1, 2, 'b')", errData},
		{"not null", "INSERT INTO t VALUES (2, NULL, 'b')", errData},
		{"check", "INSERT INTO t VALUES (3, 3, 'toolong')", errData},
		{"datatype mismatch", "INSERT INTO t VALUES ('x', 3, 'c')", errData},
		{"no such table", "INSERT INTO missing VALUES (1)", errPermanent},
		{"no such column", "UPDATE t SET nope = 1", errPermanent},
		{"syntax error", "MERGE INTO t USING", errPermanent},
		{"value count", "INSERT INTO t VALUES (4, 4)", errPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ExecContext(ctx, tc.stmt)
			if err == nil {
				t.Fatalf("%s: no error", tc.stmt)
			}
			if got := classifyError(err); got != tc.want {
				t.Fatalf("%v is %s, want %s", err, classNames[got], classNames[tc.want])
			}
		})
	}
	// Adding column 2001 to a table of 2000.
	if _, err := db.ExecContext(ctx, "CREATE TABLE w ("+strings.Join(wide[:2000], ", ")+")"); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, "ALTER TABLE w ADD COLUMN extra INTEGER")
	if err == nil || classifyError(err) != errData {
		t.Fatalf("adding a column past SQLite's limit: %v is %s, want data", err, classNames[classifyError(err)])
	}
}

func TestClassifyOtherErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errorClass
	}{
		{context.Canceled, errTransient},
		{context.DeadlineExceeded, errTransient},
		{io.ErrUnexpectedEOF, errTransient},
		{errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), errTransient},
		{errors.New("unable to encode 1e400 into binary format for int8"), errData},
	} {
		if got := classifyError(tc.err); got != tc.want {
			t.Errorf("%v is %s, want %s", tc.err, classNames[got], classNames[tc.want])
		}
	}
}

// A permanent error says what the sink was doing, what the database said
// and what to do about it; a transient one is left unmarked for retries.
func TestWrapPermanentErrorsSayWhatToDo(t *testing.T) {
	db := sqliteDB{}
	err := wrap(db, "writing 3 rows to public.films", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table films"})
	if !connector.IsPermanent(err) {
		t.Fatalf("%v is not permanent", err)
	}
	for _, want := range []string{"writing 3 rows to public.films", "permission denied for table films", "42501", "grant the sink's database user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if err := wrap(db, "committing", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}); connector.IsPermanent(err) {
		t.Errorf("a deadlock is marked permanent: %v", err)
	}
}

// Only faults in a statement's own text stop merges; a table or privilege
// the merge lacks may come back and is retried.
func TestStatementErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "42601"}, true},
		{&pgconn.PgError{Code: "42883"}, true},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "42501"}, false},
		{&mysql.MySQLError{Number: 1064}, true},
		{&mysql.MySQLError{Number: 1305}, true},
		{&mysql.MySQLError{Number: 1146}, false},
		{errors.New("syntax error"), false},
	} {
		if got := isStatementError(fmt.Errorf("running merge statement 1: %w", tc.err)); got != tc.want {
			t.Errorf("%v: statement error = %v, want %v", tc.err, got, tc.want)
		}
	}
}
