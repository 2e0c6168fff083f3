package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"
)

// SQLSink lands records in a table of PostgreSQL, MySQL/MariaDB or SQLite
// (the `postgres`, `mysql` and `sqlite` sink keys), optionally as a staging
// table merged into its final place by a procedure.
type SQLSink struct {
	// DSN is the connection string (postgres, mysql); printed with its
	// password masked.
	DSN string `yaml:"dsn" dsn:"true" doc:"Connection string (postgres, mysql; required); printed with its password masked." example:"postgres://sluice:${PGPASSWORD}@localhost:5432/films"`
	// Path is the database file (sqlite only); created when missing.
	Path string `yaml:"path" doc:"The database file (sqlite only; required there); created when missing." example:"films.db"`
	// StagingTable is the table rows are written to; Table is the same key
	// for sinks without a merge. Either may be schema-qualified (a.b).
	StagingTable string `yaml:"staging_table" doc:"The table rows are written to, merged by merge (schema.table allowed). Either staging_table or table is required." example:"films_staging"`
	Table        string `yaml:"table" doc:"The table rows are written to, for a sink without merge (schema.table allowed)." example:"films"`
	// CreateTable creates the table from the first record's shape when it
	// does not exist. Without it a missing table or column stops the
	// pipeline at start with its name.
	CreateTable bool `yaml:"create_table" doc:"Create the table from the first record's shape when it does not exist; without it a missing table or column stops the pipeline at start, named."`
	// AddColumns adds a nullable column when records bring a field the
	// table has no column for (a schema that evolved), typed as
	// create_table types them. Default: on with create_table (and no
	// columns mapping), off otherwise: fields without a column are then
	// left out, with one warning each.
	AddColumns *bool `yaml:"add_columns" doc:"Add a nullable column when records bring a field the table has none for (a schema that evolved), typed as create_table types them. Default: on with create_table (and no columns), off otherwise: such fields are left out, with one warning each."`
	// MaxColumns is the most columns create_table and add_columns give the
	// table, kept under the database's own limit so that a record with
	// thousands of fields is rejected as bad input (by on_error) instead of
	// leaving a table the database cannot widen or write. Default:
	// postgres 1500 (the server's limit is 1600, dropped columns count),
	// mysql 1000 (InnoDB: 1017, and its row size can stop a table sooner),
	// sqlite 1900 (2000).
	MaxColumns int `yaml:"max_columns" advanced:"true" doc:"The most columns create_table and add_columns give the table; a record that would pass it is bad input (on_error). Default: postgres 1500 (limit 1600), mysql 1000 (InnoDB: 1017), sqlite 1900 (2000)."`
	// Columns maps column -> source explicitly: a field of the decoded
	// value (dots reach into nested records: payload.id) or one of the
	// metadata names _topic, _partition, _offset, _timestamp, _key. Without
	// it every column takes the field of the same name.
	Columns map[string]string `yaml:"columns" doc:"Explicit column: source mapping; a source is a field of the decoded value (dots reach into nested records) or _topic, _partition, _offset, _timestamp, _key. Without it every column takes the field of its name." example:"{id: payload.id, kafka_offset: _offset}"`
	// Metadata lists the metadata columns to fill (and to create with
	// create_table); default: all five when create_table is set, otherwise
	// whichever of them the table has.
	Metadata []string `yaml:"metadata" enum:"_topic|_partition|_offset|_timestamp|_key" doc:"Metadata columns to fill (and create with create_table); default: all five with create_table, otherwise whichever of them the table has."`
	// MaxConnections bounds the connections the sink opens; default 8.
	MaxConnections int `yaml:"max_connections" default:"8" min:"1" doc:"Connections the sink may open."`
	// Writers is how many transactions write one batch at once, each
	// holding the rows of some of its partitions (so each partition's rows
	// stay in order). Default 2 for postgres and mysql, 1 for sqlite (one
	// writer at a time); exact merges always write with one.
	Writers int `yaml:"writers" advanced:"true" doc:"Transactions that write one batch at once, each taking whole partitions (so each partition's rows stay in order); at most max_connections. Default 2 for postgres and mysql, 1 for sqlite (one writer at a time); exact merges always write with one."`
	// StatementTimeout bounds each round trip to the server (a statement,
	// a COPY, BEGIN, COMMIT): past it the sink closes the connection and
	// retries on a new one, so a half-open connection (a server that
	// failed over, a NAT box that forgot the flow) cannot stall a
	// partition. It is the client's deadline, not PostgreSQL's
	// statement_timeout setting (which the DSN can set). Default 1m: room
	// for large COPYs and lock waits behind other writers.
	StatementTimeout time.Duration `yaml:"statement_timeout" default:"1m" min:"1ns" advanced:"true" doc:"Deadline of each round trip to the server (postgres, mysql): a statement, a COPY, BEGIN, COMMIT. Past it the sink closes the connection and retries the write on a new one, so a half-open connection cannot stall the pipeline. The client's deadline, not PostgreSQL's statement_timeout setting. MySQL: the driver's readTimeout and writeTimeout, unless the DSN sets them."`
	// Merge, when set, runs a procedure that merges the staging table.
	Merge *Merge `yaml:"merge" doc:"Merge the staging table into its final place with your procedure when a trigger fires."`
}

// Merge says how and when the staging table is merged.
type Merge struct {
	// Call is one statement, usually `CALL merge_films()`; Statements is a
	// list run in order. Exactly one is set. Both are Go templates over
	// {{.HighWaterMark}} (the last staging batch id to merge: rows with
	// _sluice_batch <= it), {{.Table}} (the quoted staging table) and
	// {{.Pipeline}}.
	Call       string   `yaml:"call" doc:"The statement a merge runs, a Go template over {{.HighWaterMark}} (the last staging batch id to merge: rows with _sluice_batch <= it), {{.Table}} (the quoted staging table) and {{.Pipeline}}. Either call or statements is required." example:"CALL merge_films({{.HighWaterMark}})"`
	Statements []string `yaml:"statements" doc:"Statements a merge runs in order, instead of call; the same templates."`
	// EveryRecords merges when this many rows arrived since the last
	// merge, counted across every consumer and process of the pipeline.
	EveryRecords int `yaml:"every_records" min:"0" doc:"Merge when this many rows arrived since the last merge, counted across every consumer and process of the pipeline. At least one of every_records, idle and max_interval is needed."`
	// Idle merges when no row arrived for this long and staging is not
	// empty (the topic went quiet).
	Idle time.Duration `yaml:"idle" doc:"Merge when no row arrived for this long and staging is not empty (the topic went quiet)." example:"30s"`
	// MaxInterval merges when the oldest unmerged row is this old.
	MaxInterval time.Duration `yaml:"max_interval" doc:"Merge when the oldest unmerged row is this old." example:"5m"`
	// Mode is pause (default: consumers pause and drain, nothing is
	// inserted while the merge runs) or continuous (ingestion goes on; the
	// merge takes the rows at or below {{.HighWaterMark}}).
	Mode string `yaml:"mode" default:"pause" enum:"pause|continuous" doc:"pause: consumers stop, in-flight writes drain, the merge runs, consumers resume. continuous: ingestion goes on and the merge takes only the rows at or below {{.HighWaterMark}}, which it must use."`
	// Exact makes a merge triggered by count hold exactly EveryRecords rows:
	// writes are split at the threshold before they happen.
	Exact bool `yaml:"exact" advanced:"true" doc:"A merge triggered by count holds exactly every_records rows: writes are split at the threshold before they happen. Needs every_records."`
	// Timeout bounds each statement of a merge (the call itself, and its
	// bookkeeping) and, with postgres, a write's wait for the write gate
	// while a merge holds it. A merge past it is rolled back and retried. Default 1h:
	// merge procedures may legitimately run long, and a live server keeps
	// answering TCP keepalives meanwhile; raise it for longer merges.
	Timeout time.Duration `yaml:"timeout" default:"1h" min:"1ns" advanced:"true" doc:"Deadline of each statement of a merge (postgres, mysql), and (postgres) of a write waiting for the merge to release the write gate; a merge past it is rolled back and retried. Raise it if your merge legitimately runs longer."`
	// History is how many merges are kept for the admin API; default 100.
	History int `yaml:"history" default:"100" min:"0" advanced:"true" doc:"How many merges the admin API keeps."`
}

const (
	MergePause      = "pause"
	MergeContinuous = "continuous"
)

// SQLColumnLimit is the most columns a table can have in each database
// (MySQL: InnoDB's limit).
var SQLColumnLimit = map[string]int{"postgres": 1600, "mysql": 1017, "sqlite": 2000}

// SQLDefaultMaxColumns is max_columns when it is not set.
var SQLDefaultMaxColumns = map[string]int{"postgres": 1500, "mysql": 1000, "sqlite": 1900}

// SQLMetadataColumns are the metadata sources a column can take.
var SQLMetadataColumns = []string{"_topic", "_partition", "_offset", "_timestamp", "_key"}

// sqlName is what a configured table or column name may be: anything
// printable without quotes or NUL, so it can always be quoted safely.
var sqlName = regexp.MustCompile(`^[^\x00-\x1f"` + "`" + `]{1,63}$`)

// SQLDefaultWriters is writers when it is not set.
var SQLDefaultWriters = map[string]int{"postgres": 2, "mysql": 2, "sqlite": 1}

// applyDefaults sets the defaults that depend on the database (kind) or on
// other keys; the plain ones come from the tags.
func (s *SQLSink) applyDefaults(kind string) {
	if s.CreateTable && s.Metadata == nil && s.Columns == nil {
		s.Metadata = append([]string(nil), SQLMetadataColumns...)
	}
	if s.Writers == 0 {
		s.Writers = SQLDefaultWriters[kind]
		if s.MaxConnections > 0 {
			s.Writers = min(s.Writers, s.MaxConnections) // max_connections: 1 writes with one
		}
	}
	if s.MaxColumns == 0 {
		s.MaxColumns = SQLDefaultMaxColumns[kind]
	}
}

// AddsColumns says whether the sink adds columns for new fields.
func (s *SQLSink) AddsColumns() bool {
	if s.AddColumns != nil {
		return *s.AddColumns && s.Columns == nil
	}
	return s.CreateTable && s.Columns == nil
}

// TableName is staging_table, or table when that is what was set.
func (s *SQLSink) TableName() string {
	if s.StagingTable != "" {
		return s.StagingTable
	}
	return s.Table
}

func (s *SQLSink) validate(v *validator, kind string) {
	switch kind {
	case "sqlite":
		v.required("path", s.Path)
		if s.DSN != "" {
			v.add("dsn", "is not used by sqlite; set path")
		}
	default:
		v.required("dsn", s.DSN)
		if s.Path != "" {
			v.add("path", "is only for sqlite; set dsn")
		}
	}
	switch {
	case s.AddColumns != nil && *s.AddColumns && s.Columns != nil:
		v.add("add_columns", "cannot be used with columns (an explicit mapping names every column)")
	case s.Writers < 0:
		v.add("writers", "must be at least 1")
	case kind == "sqlite" && s.Writers > 1:
		v.add("writers", "sqlite has one writer at a time; leave writers unset")
	case s.Writers > s.MaxConnections && s.MaxConnections > 0:
		v.add("writers", fmt.Sprintf("is %d, more than max_connections (%d)", s.Writers, s.MaxConnections))
	}
	switch {
	case s.StagingTable == "" && s.Table == "":
		v.add("staging_table", "is required (or table)")
	case s.StagingTable != "" && s.Table != "":
		v.add("table", "cannot be used together with staging_table")
	default:
		for _, part := range strings.Split(s.TableName(), ".") {
			if !sqlName.MatchString(part) {
				v.add(tableKey(s), fmt.Sprintf("%q is not a valid table name (at most 63 characters, no quotes or control characters, schema.table allowed)", s.TableName()))
				break
			}
		}
	}
	cols := make([]string, 0, len(s.Columns))
	for c := range s.Columns {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		if !sqlName.MatchString(c) {
			v.add("columns", fmt.Sprintf("%q is not a valid column name", c))
		}
		if strings.TrimSpace(s.Columns[c]) == "" {
			v.add("columns."+c, "needs a field name or one of "+strings.Join(SQLMetadataColumns, ", "))
		}
	}
	if limit := SQLColumnLimit[kind]; s.MaxColumns < 0 || (limit > 0 && s.MaxColumns > limit) {
		v.add("max_columns", fmt.Sprintf("must be between 1 and %d, the most columns a %s table can have (0: the default)", limit, kind))
	}
	if s.Merge != nil {
		s.Merge.validate(v.sub("merge"))
	}
}

func tableKey(s *SQLSink) string {
	if s.StagingTable != "" {
		return "staging_table"
	}
	return "table"
}

func (m *Merge) validate(v *validator) {
	switch {
	case m.Call == "" && len(m.Statements) == 0:
		v.add("call", "is required (or statements): the procedure that merges the staging table")
	case m.Call != "" && len(m.Statements) > 0:
		v.add("statements", "cannot be used together with call")
	}
	for i, st := range m.MergeStatements() {
		field := "call"
		if m.Call == "" {
			field = fmt.Sprintf("statements[%d]", i)
		}
		if strings.TrimSpace(st) == "" {
			v.add(field, "is empty")
			continue
		}
		if _, err := template.New(field).Option("missingkey=error").Parse(st); err != nil {
			v.add(field, fmt.Sprintf("bad template: %v", err))
		}
	}
	if m.Idle < 0 {
		v.add("idle", "must be a positive duration such as 30s")
	}
	if m.MaxInterval < 0 {
		v.add("max_interval", "must be a positive duration such as 5m")
	}
	if m.EveryRecords == 0 && m.Idle == 0 && m.MaxInterval == 0 {
		v.add("every_records", "at least one trigger is needed: every_records, idle or max_interval")
	}
	if m.Exact && m.EveryRecords <= 0 {
		v.add("exact", "needs every_records > 0")
	}
	if m.Mode == MergeContinuous {
		uses := false
		for _, st := range m.MergeStatements() {
			if strings.Contains(st, ".HighWaterMark") {
				uses = true
			}
		}
		if !uses {
			v.add("mode", "continuous needs the merge to use {{.HighWaterMark}} (merge and delete only rows with _sluice_batch <= it); otherwise rows inserted during the merge could be deleted unmerged")
		}
	}
}

// MergeStatements is Call or Statements, as a list.
func (m *Merge) MergeStatements() []string {
	if m.Call != "" {
		return []string{m.Call}
	}
	return m.Statements
}
