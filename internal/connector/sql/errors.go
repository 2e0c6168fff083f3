package sql

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-dev/sluice/internal/connector"
	"modernc.org/sqlite"
)

// errorClass is what an error from the database means for the sink.
type errorClass int

const (
	// errTransient may heal by waiting: a connection lost, a server
	// restarting, a deadlock or serialization failure, a lock wait, a
	// resource (disk, memory, connections) running out. Retried.
	errTransient errorClass = iota
	// errData is the rows' fault: a value that does not fit its column, a
	// constraint, a row or a table too wide for the database. Inserting,
	// the sink narrows it down to the records at fault; creating or
	// widening a table, it is the fault of the record whose fields make
	// the columns. Those records go where on_error says.
	errData
	// errPermanent cannot heal by waiting: configuration, permissions,
	// missing objects, a syntax error in a merge statement. The pipeline
	// stops with it.
	errPermanent
)

// classifyError sorts an error from any of the three drivers.
func classifyError(err error) errorClass {
	c, _ := explainError(err)
	return c
}

// explainError sorts err and, for a permanent error, says what to do
// about it ("" when the database's own message says enough).
func explainError(err error) (errorClass, string) {
	if err == nil {
		return errTransient, ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifyPostgres(pe.Code)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return classifyMySQL(me.Number, me.Message)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return classifySQLite(se.Code(), se.Error())
	}
	switch {
	case isContextErr(err):
		return errTransient, ""
	case errors.Is(err, mysql.ErrPktTooLarge):
		// One statement over max_allowed_packet: split, down to the row
		// that alone is too large.
		return errData, ""
	case strings.Contains(err.Error(), "unable to encode"):
		// pgx could not encode a value for its column.
		return errData, ""
	}
	return errTransient, ""
}

// Hints for permanent errors, shared by the databases.
const (
	hintPrivilege = "grant the sink's database user the privileges it needs on the table, its schema and the merge procedure"
	hintLogin     = "check the user and password of the DSN"
	hintNoTable   = "the table does not exist: create it, or set create_table: true"
	hintSyntax    = "a statement has a syntax error: check merge.call and merge.statements"
	hintNoRoutine = "the procedure or function does not exist: check merge.call"
	hintReadOnly  = "the database is read-only"
)

// classifyPostgres sorts a PostgreSQL error by its SQLSTATE
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func classifyPostgres(code string) (errorClass, string) {
	switch code {
	case "54000", "54011":
		// program_limit_exceeded (a row or index entry too big), too many
		// columns: the record that needs them.
		return errData, ""
	case "P0001", "P0004":
		// RAISE EXCEPTION or ASSERT in a trigger refusing the row.
		return errData, ""
	case "40002":
		return errPermanent, "a deferred constraint failed at commit, where the sink cannot tell which row broke it: make the constraint NOT DEFERRABLE (or INITIALLY IMMEDIATE)"
	case "53400":
		return errPermanent, "a server configuration limit was reached (such as temp_file_limit): raise it"
	case "57P04":
		return errPermanent, "the database was dropped"
	case "XX001", "XX002":
		return errPermanent, "the server reports corrupted data"
	case "42501":
		return errPermanent, hintPrivilege
	case "42P01":
		return errPermanent, hintNoTable
	case "42601":
		return errPermanent, hintSyntax
	case "42883":
		return errPermanent, hintNoRoutine
	case "28000", "28P01":
		return errPermanent, hintLogin
	case "3D000":
		return errPermanent, "the database of the DSN does not exist"
	case "3F000":
		return errPermanent, "the schema does not exist"
	}
	if len(code) != 5 {
		return errTransient, ""
	}
	switch code[:2] {
	case "21", "22", "23", "44":
		// cardinality (a key twice in one statement), data exception,
		// integrity constraint, WITH CHECK OPTION.
		return errData, ""
	case "0A", "0L", "0P", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F", "42", "54", "F0", "P0":
		// feature not supported, grants and roles, statement and cursor
		// names, routine errors, syntax and access rules, other program
		// limits, server configuration files, PL/pgSQL.
		return errPermanent, ""
	}
	// 08 connection, 25 transaction state (25006: a standby after a
	// failover), 40 serialization failure and deadlock, 53 resources (disk
	// full, out of memory, too many connections), 55 lock not available,
	// 57 operator intervention (shutdown, statement timeout), 58 I/O,
	// XX internal, and codes we do not know: retried.
	return errTransient, ""
}

// classifyMySQL sorts a MySQL or MariaDB error by its number
// (https://mariadb.com/kb/en/mariadb-error-codes/).
func classifyMySQL(number uint16, message string) (errorClass, string) {
	switch number {
	case 1048, 1062, 1216, 1217, 1263, 1264, 1265, 1292, 1364, 1366, 1367, 1406, 1411, 1416, 1451, 1452, 1690,
		3140, 3156, 3819, 4025, 4038:
		// NULL into NOT NULL, duplicate key, foreign keys, out of range,
		// truncated, incorrect or missing value, too long, invalid JSON,
		// CHECK constraints.
		return errData, ""
	case 1117, 1118, 1153:
		// too many columns, row size too large, one row over
		// max_allowed_packet: the record that needs it.
		return errData, ""
	case 1005:
		// Can't create table: InnoDB's "Too many columns" (errno 185) is
		// the record's; anything else (a foreign key, an engine) is not.
		if strings.Contains(message, "errno: 185") || strings.Contains(message, "Too many columns") {
			return errData, ""
		}
		return errPermanent, ""
	case 1044, 1142, 1143, 1227, 1370:
		return errPermanent, hintPrivilege
	case 1045, 1698, 1251:
		return errPermanent, hintLogin
	case 1049:
		return errPermanent, "the database of the DSN does not exist"
	case 1146, 1109:
		return errPermanent, hintNoTable
	case 1064, 1149:
		return errPermanent, hintSyntax
	case 1305, 1318:
		return errPermanent, hintNoRoutine
	case 1046, 1050, 1054, 1059, 1060, 1061, 1067, 1071, 1101, 1113, 1136, 1148, 1166, 1171, 1193, 1235, 1356, 1415, 1422:
		// no database selected, exists already, unknown column, bad
		// identifiers and definitions, column count mismatch, not
		// supported or not allowed here.
		return errPermanent, ""
	}
	// Lost or refused connections (1040, 1053, 2006, 2013), lock wait
	// timeouts (1205), deadlocks (1213), a read-only server during a
	// failover (1290, 1792), disk or memory running out (1021, 1037,
	// 1038, 1114), interrupted or timed-out queries (1317, 1969, 3024),
	// and numbers we do not know: retried.
	return errTransient, ""
}

// classifySQLite sorts a SQLite error by its primary result code
// (https://www.sqlite.org/rescode.html) and, for the generic
// SQLITE_ERROR, its message.
func classifySQLite(code int, message string) (errorClass, string) {
	switch code & 0xff {
	case 18, 19, 20: // TOOBIG, CONSTRAINT, MISMATCH
		return errData, ""
	case 3, 23: // PERM, AUTH
		return errPermanent, "check the permissions of the database file and its directory"
	case 8: // READONLY
		return errPermanent, hintReadOnly + ": check the permissions of the database file and its directory"
	case 14: // CANTOPEN
		return errPermanent, "the database file cannot be opened: check sqlite.path and its directory"
	case 11, 26: // CORRUPT, NOTADB
		return errPermanent, "the file is not a healthy SQLite database"
	case 21, 22, 25: // MISUSE, NOLFS, RANGE
		return errPermanent, ""
	case 1: // SQLITE_ERROR: told apart by the message
		switch {
		case strings.Contains(message, "too many columns"):
			return errData, ""
		case strings.Contains(message, "no such table"):
			return errPermanent, hintNoTable
		case strings.Contains(message, "syntax error"), strings.Contains(message, "incomplete input"):
			return errPermanent, hintSyntax
		case strings.Contains(message, "no such"), strings.Contains(message, "has no column"),
			strings.Contains(message, "values for"), strings.Contains(message, "values were supplied"),
			strings.Contains(message, "already exists"),
			strings.Contains(message, "not authorized"):
			return errPermanent, ""
		}
	}
	// BUSY, LOCKED, IOERR, FULL, NOMEM, SCHEMA, INTERRUPT, ... : retried.
	return errTransient, ""
}

// isStatementError reports an error in the text of a statement itself: a
// syntax error, or a procedure or function that does not exist. Only a
// change to the statement (merge.call, merge.statements) fixes it.
func isStatementError(err error) bool {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	var se *sqlite.Error
	switch {
	case errors.As(err, &pe):
		return pe.Code == "42601" || pe.Code == "42883"
	case errors.As(err, &me):
		return me.Number == 1064 || me.Number == 1149 || me.Number == 1305 || me.Number == 1318
	case errors.As(err, &se):
		m := se.Error()
		return se.Code()&0xff == 1 && (strings.Contains(m, "syntax error") || strings.Contains(m, "incomplete input") || strings.Contains(m, "no such function"))
	}
	return false
}

// wrap says what the sink was doing and classifies err for the engine:
// permanent errors (with what to do about them) stop the pipeline, the
// rest are retried.
func wrap(db database, what string, err error) error {
	if err == nil {
		return nil
	}
	if db.classify(err) != errPermanent {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, hint := explainError(err); hint != "" {
		return connector.Permanent(fmt.Errorf("%s: %w (%s)", what, err, hint))
	}
	return connector.Permanent(fmt.Errorf("%s: %w", what, err))
}
