package sql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

// wideValue is a JSON record with id and n more integer fields.
func wideValue(id, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%d`, id)
	for i := range n {
		fmt.Fprintf(&b, `,"f%d":%d`, i, i)
	}
	b.WriteString("}")
	return b.String()
}

func (d *testDB) columnCount(t *testing.T, table string) int64 {
	t.Helper()
	q := fmt.Sprintf("SELECT count(*) FROM information_schema.columns WHERE table_name = '%s'", table)
	if d.kind == "sqlite" {
		q = fmt.Sprintf("SELECT count(*) FROM pragma_table_info('%s')", table)
	}
	return d.int(t, q)
}

// rejectedOnly checks that err rejects exactly the records at offsets
// (the rest of the batch durable), each for too many columns with a
// message naming the table and what to look at.
func rejectedOnly(t *testing.T, err error, table string, words []string, offsets ...int64) {
	t.Helper()
	var be *connector.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("write: %v (%T), want a *connector.BatchError rejecting offsets %v: the partition would stall", err, err, offsets)
	}
	if len(be.NotWritten) > 0 || len(be.Released) > 0 || be.Cause != nil {
		t.Fatalf("write: %v; want the rest of the batch durable", be)
	}
	if len(be.Failed) != len(offsets) {
		t.Fatalf("rejected %d records (%v), want offsets %v", len(be.Failed), be, offsets)
	}
	for i, re := range be.Failed {
		if re.Record == nil || re.Record.Offset != offsets[i] {
			t.Fatalf("rejected %v, want offset %d", re, offsets[i])
		}
		if re.Reason != "too_many_columns" {
			t.Errorf("reason %q, want too_many_columns", re.Reason)
		}
		for _, w := range append([]string{table}, words...) {
			if !strings.Contains(re.Error(), w) {
				t.Errorf("%q does not say %q", re.Error(), w)
			}
		}
	}
}

// Regression: a record with 2,000 fields under create_table/add_columns
// hit the database's own column limit (PostgreSQL 54011, MariaDB 1117/1118,
// SQLite "too many columns"), which was retried forever: the partition
// stalled and the table was left with 1,600 (988) columns. Now the record
// is rejected as bad input (on_error routes it), the table is not altered
// for it, and the records around it and after it are written.
func TestSQLRecordWithTooManyFieldsIsRejectedAndTheTableKeepsItsColumns(t *testing.T) {
	for _, kind := range kinds {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/raw=%v", kind, raw), func(t *testing.T) {
				d := openTestDB(t, kind)
				ctx := context.Background()
				tbl, pipe := uniqueName("wide"), uniqueName("p")
				d.dropAfter(t, pipe, tbl)
				cfg := d.cfg
				cfg.Table, cfg.CreateTable = tbl, true
				s, err := sqlsink.New(ctx, sqlsink.Options{Kind: kind, Config: cfg, Pipeline: pipe, Fields: jsonFields(t, raw), Logger: testLogger()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close(context.Background()) })
				write := func(off int64, values ...string) error {
					if raw {
						return s.Write(ctx, rawValues("in", off, values...))
					}
					return s.Write(ctx, records(t, "in", 0, off, values...))
				}

				// create_table: the first record is too wide to shape the
				// table; the next one shapes it.
				err = write(0, wideValue(0, 2000), `{"id":1,"name":"a"}`)
				rejectedOnly(t, err, tbl, []string{"max_columns", "2 columns", "2002"}, 0)
				cols := d.columnCount(t, tbl)
				if cols != 2 {
					t.Fatalf("table created with %d columns, want id and name (from the record that fits)", cols)
				}

				// add_columns: a good record bringing a field, the wide
				// one, and another good one in the same batch.
				err = write(2, `{"id":2,"name":"b","price":2.5}`, wideValue(3, 2000), `{"id":4,"name":"c"}`)
				rejectedOnly(t, err, tbl, []string{"max_columns", "3 columns", "2000 new fields", "2003"}, 3)
				if got := d.columnCount(t, tbl); got != cols+1 {
					t.Fatalf("table has %d columns, want %d: only price added", got, cols+1)
				}

				// Later good records arrive; the wide one is rejected
				// again if it comes back (a replay), and does not stall.
				if err := write(5, `{"id":5,"name":"d"}`); err != nil {
					t.Fatal(err)
				}
				rejectedOnly(t, write(6, wideValue(6, 2000)), tbl, []string{"max_columns"}, 6)
				got := d.strings(t, fmt.Sprintf("SELECT id, name, price FROM %s ORDER BY id", tbl))
				want := []string{"1 a <nil>", "2 b 2.5", "4 c <nil>", "5 d <nil>"}
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if got := d.columnCount(t, tbl); got != cols+1 {
					t.Fatalf("table has %d columns, want %d", got, cols+1)
				}
			})
		}
	}
}

// A record whose fields all fit max_columns, but which the database still
// cannot make a table of (MariaDB: 1,000 BIGINT columns pass InnoDB's
// 8,126-byte row size, error 1118), is rejected alone as well, whether it
// would create the table or widen it: the database's own "too wide"
// errors are the record's, not transient, and the table is not widened.
func TestSQLTableTheDatabaseRefusesIsTheRecordsProblem(t *testing.T) {
	d := openTestDB(t, "mysql")
	ctx := context.Background()
	tbl, pipe := uniqueName("rowsize"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	cfg := d.cfg
	cfg.Table, cfg.CreateTable, cfg.MaxColumns = tbl, true, 1017
	s := newSink(t, d, pipe, cfg, false)
	err := s.Write(ctx, records(t, "in", 0, 0, wideValue(0, 1000), `{"id":1}`, `{"id":2}`))
	rejectedOnly(t, err, tbl, []string{"refuses", "1118"}, 0)
	if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 2 {
		t.Fatalf("rows = %d, want the 2 records that fit", n)
	}
	if n := d.columnCount(t, tbl); n != 1 {
		t.Fatalf("table has %d columns, want only id: MariaDB adds columns in place without checking the row size, so a table widened for the record refuses its rows ever after", n)
	}
}

// When every record of a batch is too wide to create the table from, all
// are rejected and no table is created; the next batch creates it.
func TestSQLCreateTableWhenEveryRecordIsTooWide(t *testing.T) {
	d := openTestDB(t, "sqlite")
	ctx := context.Background()
	tbl, pipe := uniqueName("allwide"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	cfg := d.cfg
	cfg.Table, cfg.CreateTable, cfg.MaxColumns = tbl, true, 20
	s := newSink(t, d, pipe, cfg, false)
	rejectedOnly(t, s.Write(ctx, records(t, "in", 0, 0, wideValue(0, 30), wideValue(1, 40))), tbl, []string{"max_columns (20)"}, 0, 1)
	if n := d.int(t, d.tableExists(tbl)); n != 0 {
		t.Fatalf("table created from a record over max_columns")
	}
	if err := s.Write(ctx, records(t, "in", 0, 2, wideValue(2, 10))); err != nil {
		t.Fatal(err)
	}
	if n := d.columnCount(t, tbl); n != 11 {
		t.Fatalf("table has %d columns, want 11", n)
	}
}
