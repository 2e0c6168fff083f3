package sql_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

var kinds = []string{"postgres", "mysql", "sqlite"}

func TestSQLCreateTableFromFirstRecordAndWrite(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("created"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			cfg := d.cfg
			cfg.Table, cfg.CreateTable = tbl, true
			cfg.Metadata = []string{"_topic", "_partition", "_offset", "_timestamp", "_key"}
			s := newSink(t, d, pipe, cfg, false)
			recs := records(t, "films", 3, 40,
				`{"id":1,"title":"Alien","rating":8.5,"tags":["scifi"],"released":true}`,
				`{"id":2,"title":"Heat","rating":8.3,"tags":[],"released":false}`)
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			got := d.strings(t, fmt.Sprintf("SELECT id, title, _topic, _partition, _offset, _key FROM %s ORDER BY id", tbl))
			want := []string{"1 Alien films 3 40 k40", "2 Heat films 3 41 k41"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("rows = %q, want %q", got, want)
			}
			if n := d.int(t, fmt.Sprintf("SELECT count(*) FROM %s WHERE rating > 8.4", tbl)); n != 1 {
				t.Fatalf("rows with rating > 8.4 = %d, want 1 (rating must be a number column)", n)
			}
		})
	}
}

func TestSQLValueThatDoesNotFitIsRejectedAlone(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("fit"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer NOT NULL, name varchar(8), price numeric(6,2))", tbl))
			cfg := d.cfg
			cfg.Table = tbl
			s := newSink(t, d, pipe, cfg, false)
			recs := records(t, "films", 0, 100,
				`{"id":1,"name":"ok","price":1.5}`,
				`{"id":2,"name":"ok","price":"abc"}`,
				`{"id":3,"name":"much too long","price":1}`,
				`{"name":"no id","price":1}`,
				`{"id":5,"name":"ok","price":123456.5}`,
				`{"id":6,"name":"ok","price":2}`)
			err := s.Write(context.Background(), recs)
			var be *connector.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("Write = %v, want a *connector.BatchError", err)
			}
			want := map[int64]string{101: "column price", 102: "column name", 103: "column id", 104: "column price"}
			if len(be.Failed) != len(want) {
				t.Fatalf("rejected %d records, want %d: %v", len(be.Failed), len(want), err)
			}
			for _, f := range be.Failed {
				msg := f.Error()
				col, ok := want[f.Record.Offset]
				if !ok || !contains(msg, col) || !contains(msg, "table "+tbl) || !contains(msg, fmt.Sprintf("offset %d", f.Record.Offset)) {
					t.Errorf("rejection %q does not name table %s, %s and offset %d", msg, tbl, col, f.Record.Offset)
				}
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 2 {
				t.Fatalf("rows written = %d, want the 2 good ones", n)
			}
		})
	}
}

func TestSQLDatabaseRejectedRowIsFoundAndTheRestWritten(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("chk"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer NOT NULL, price numeric(6,2), CONSTRAINT %s_pos CHECK (price > 0))", tbl, tbl))
			cfg := d.cfg
			cfg.Table = tbl
			s := newSink(t, d, pipe, cfg, false)
			var vals []string
			for i := 0; i < 50; i++ {
				p := i + 1
				if i == 17 || i == 41 {
					p = -1
				}
				vals = append(vals, fmt.Sprintf(`{"id":%d,"price":%d}`, i, p))
			}
			err := s.Write(context.Background(), records(t, "t", 0, 0, vals...))
			var be *connector.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[0].Record.Offset != 17 || be.Failed[1].Record.Offset != 41 {
				t.Fatalf("Write = %v, want offsets 17 and 41 rejected", err)
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 48 {
				t.Fatalf("rows = %d, want 48", n)
			}
		})
	}
}

func TestSQLMissingTableOrColumnIsPermanentAndNamed(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			tbl, pipe := uniqueName("missing"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			cfg := d.cfg
			cfg.Table = tbl
			_, err := newSinkErr(d, pipe, cfg)
			if err == nil || !connector.IsPermanent(err) || !contains(err.Error(), tbl) {
				t.Fatalf("missing table: err = %v, want a permanent error naming %s", err, tbl)
			}
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id integer)", tbl))
			cfg.Columns = map[string]string{"id": "id", "film_title": "title"}
			_, err = newSinkErr(d, pipe, cfg)
			if err == nil || !connector.IsPermanent(err) || !contains(err.Error(), "film_title") {
				t.Fatalf("missing column: err = %v, want a permanent error naming film_title", err)
			}
			_ = ctx
		})
	}
}

func TestSQLExactlyOnceSkipsRowsAlreadyWritten(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			tbl, pipe := uniqueName("eos"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name text, price double precision)", tbl))
			cfg := d.cfg
			cfg.Table = tbl
			s := newSink(t, d, pipe, cfg, true)
			a := items(t, "in", 0, 0, 100)
			b := items(t, "in", 1, 0, 50)
			if err := s.Write(ctx, append(a[:60:60], b...)); err != nil {
				t.Fatal(err)
			}
			// A replay overlapping what is stored (a crash before the Kafka
			// commit, a partition that moved): only the new rows land.
			if err := s.Write(ctx, a[40:]); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, append(a[:10:10], b[:10]...)); err != nil {
				t.Fatal(err)
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 150 {
				t.Fatalf("rows = %d, want 150", n)
			}
			if n := d.int(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id < 100 AND price = id %% 1000 + 0.5", tbl)); n != 100 {
				t.Fatalf("distinct rows of partition 0 = %d, want 100", n)
			}
			offs, err := s.(connector.OffsetStore).LoadOffsets(ctx, "in", []int32{0, 1, 2})
			if err != nil {
				t.Fatal(err)
			}
			if offs[0] != 100 || offs[1] != 50 || len(offs) != 2 {
				t.Fatalf("stored offsets = %v, want map[0:100 1:50]", offs)
			}
		})
	}
}
