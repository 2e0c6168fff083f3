package sql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

// With create_table, fields that appear later (a schema that evolved) get
// their own columns, typed from their values; names that cannot be
// columns are left out, and a field that has only been null so far waits
// for a value. Both with the sink parsing JSON itself and with decoded
// records.
func TestSQLAddColumnsForNewFields(t *testing.T) {
	batches := [][]string{
		{`{"id":1,"name":"a"}`},
		{`{"id":2,"name":"b","price":2.5,"tags":["x"],"bad name!":1,"later":null}`, `{"id":3,"price":3}`},
		{`{"id":4,"later":"now"}`},
	}
	for _, kind := range kinds {
		for _, raw := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/raw=%v", kind, raw), func(t *testing.T) {
				d := openTestDB(t, kind)
				ctx := context.Background()
				tbl, pipe := uniqueName("evolve"), uniqueName("p")
				d.dropAfter(t, pipe, tbl)
				cfg := d.cfg
				cfg.Table, cfg.CreateTable = tbl, true
				s, err := sqlsink.New(ctx, sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipe, Fields: jsonFields(t, raw), Logger: testLogger()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close(context.Background()) })
				off := int64(0)
				for _, values := range batches {
					var recs []*connector.Record
					if raw {
						recs = rawValues("in", off, values...)
					} else {
						recs = records(t, "in", 0, off, values...)
					}
					off += int64(len(values))
					if err := s.Write(ctx, recs); err != nil {
						t.Fatal(err)
					}
				}
				got := d.strings(t, fmt.Sprintf("SELECT id, name, price, CASE WHEN tags IS NULL THEN 0 ELSE 1 END, later FROM %s ORDER BY id", tbl))
				want := []string{"1 a <nil> 0 <nil>", "2 b 2.5 1 <nil>", "3 <nil> 3 0 <nil>", "4 <nil> <nil> 0 now"}
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if n := d.int(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE price > 2.6", tbl)); n != 1 {
					t.Fatalf("rows with price > 2.6 = %d, want 1 (price must be a number column)", n)
				}
			})
		}
	}
}

// add_columns: false keeps the table as it is: the new field is left out
// (with a warning) and the rest of the row is written.
func TestSQLAddColumnsOff(t *testing.T) {
	d := openTestDB(t, "postgres")
	ctx := context.Background()
	tbl, pipe := uniqueName("noevolve"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	cfg := d.cfg
	off := false
	cfg.Table, cfg.CreateTable, cfg.AddColumns = tbl, true, &off
	s := newSink(t, d, pipe, cfg, false)
	if err := s.Write(ctx, records(t, "in", 0, 0, `{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, records(t, "in", 0, 1, `{"id":2,"extra":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
	if n := d.int(t, fmt.Sprintf("SELECT count(*) FROM information_schema.columns WHERE table_name = '%s'", tbl)); n != 1 {
		t.Fatalf("table has %d columns, want only id", n)
	}
}
