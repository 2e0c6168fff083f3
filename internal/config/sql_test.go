package config

import (
	"strings"
	"testing"
	"time"
)

const sqlSource = `
name: films
source:
  kafka: {brokers: [localhost:9092], topics: [films], group: films-to-postgres, consumers: 2}
format: {value: json}
`

func TestSQLSinkParsesTheDesignExample(t *testing.T) {
	f, err := Parse([]byte(sqlSource+`
delivery: exactly_once
sink:
  postgres:
    dsn: ${FILMS_DSN}
    staging_table: films_staging
    merge: {call: "CALL merge_films()", every_records: 100, idle: 30s, mode: pause}
`), func(k string) (string, bool) {
		return "postgres://sluice:s3cret@db:5432/films", k == "FILMS_DSN"
	})
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pipelines[0]
	s := p.Sink.Postgres
	if s == nil || s.TableName() != "films_staging" || s.MaxConnections != 8 || p.Delivery != ExactlyOnce {
		t.Fatalf("sink = %+v", s)
	}
	m := s.Merge
	if m.Call != "CALL merge_films()" || m.EveryRecords != 100 || m.Idle != 30*time.Second || m.Mode != MergePause || m.History != 100 {
		t.Fatalf("merge = %+v", m)
	}
	out := f.YAML()
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "postgres://sluice:"+Redacted+"@db:5432/films") {
		t.Fatalf("printed config does not mask the DSN password:\n%s", out)
	}
}

func TestSQLSinkDefaults(t *testing.T) {
	f, err := Parse([]byte(sqlSource+`
sink:
  sqlite: {path: films.db, table: films, create_table: true}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Pipelines[0].Sink.SQLite
	if len(s.Metadata) != 5 || s.Merge != nil {
		t.Fatalf("create_table should default to all metadata columns: %+v", s)
	}
}

func TestSQLSinkProblemsHaveTheirPaths(t *testing.T) {
	tests := []struct {
		name string
		sink string
		want []string
	}{
		{"two sinks", `
  postgres: {dsn: "postgres://x", table: t}
  mysql: {dsn: "root@tcp(x)/db", table: t}`, []string{"sink: exactly one sink is needed (kafka, file, postgres, mysql, sqlite", "found 2: postgres, mysql"}},
		{"connection and table", `
  postgres: {path: x.db}`, []string{"sink.postgres.dsn: is required", "sink.postgres.path: is only for sqlite", "sink.postgres.staging_table: is required (or table)"}},
		{"sqlite needs a path", `
  sqlite: {dsn: x, staging_table: s, table: t}`, []string{"sink.sqlite.path: is required", "sink.sqlite.dsn: is not used by sqlite", "sink.sqlite.table: cannot be used together with staging_table"}},
		{"bad names", `
  mysql: {dsn: d, table: "a.b.c\"", columns: {"x\"y": id, ok: ""}, metadata: [_topic, _headers]}`, []string{"sink.mysql.table:", "sink.mysql.columns: \"x\\\"y\" is not a valid column name", "sink.mysql.columns.ok: needs a field name", "sink.mysql.metadata[1]: \"_headers\" is not one of"}},
		{"merge needs a statement and a trigger", `
  postgres: {dsn: d, staging_table: s, merge: {mode: sometimes, exact: true}}`, []string{"sink.postgres.merge.call: is required (or statements)", "sink.postgres.merge.every_records: at least one trigger", "sink.postgres.merge.exact: needs every_records > 0", "sink.postgres.merge.mode: \"sometimes\" is not one of pause, continuous"}},
		{"call and statements", `
  postgres: {dsn: d, staging_table: s, merge: {call: "CALL m()", statements: ["DELETE FROM s"], idle: 1s}}`, []string{"sink.postgres.merge.statements: cannot be used together with call"}},
		{"continuous must use the high-water mark", `
  postgres: {dsn: d, staging_table: s, merge: {call: "CALL m()", idle: 1s, mode: continuous}}`, []string{"sink.postgres.merge.mode: continuous needs the merge to use {{.HighWaterMark}}"}},
		{"writers", `
  postgres: {dsn: d, table: t, writers: 9}`, []string{"sink.postgres.writers: is 9, more than max_connections (8)"}},
		{"add_columns with columns", `
  postgres: {dsn: d, table: t, add_columns: true, columns: {id: id}}`, []string{"sink.postgres.add_columns: cannot be used with columns"}},
		{"negative writers", `
  mysql: {dsn: d, table: t, writers: -1}`, []string{"sink.mysql.writers: must be at least 1"}},
		{"sqlite writers", `
  sqlite: {path: x.db, table: t, writers: 2}`, []string{"sink.sqlite.writers: sqlite has one writer at a time"}},
		{"max_columns over the database's limit", `
  postgres: {dsn: d, table: t, max_columns: 1601}`, []string{"sink.postgres.max_columns: must be between 1 and 1600"}},
		{"negative max_columns", `
  sqlite: {path: x.db, table: t, max_columns: -1}`, []string{"sink.sqlite.max_columns: must be between 1 and 2000"}},
		{"bad template", `
  postgres: {dsn: d, staging_table: s, merge: {statements: ["CALL m({{.HighWaterMark)"], idle: 1s}}`, []string{"sink.postgres.merge.statements[0]: bad template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(sqlSource+"sink:"+tt.sink+"\n"), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSQLSinkAllowsExactlyOnce(t *testing.T) {
	_, err := Parse([]byte(sqlSource+`
delivery: exactly_once
sink:
  mysql: {dsn: "root@tcp(127.0.0.1:3306)/test", staging_table: s, merge: {statements: ["CALL m({{.HighWaterMark}})"], every_records: 100, exact: true, mode: continuous}}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
}
