package sql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// interleaved is n records per partition of partitions, in the order a
// consumer reading them round-robin would see.
func interleaved(t *testing.T, partitions, n int) []*connector.Record {
	var out []*connector.Record
	per := make([][]*connector.Record, partitions)
	for p := range per {
		per[p] = items(t, "in", int32(p), int64(p)*1_000_000, n)
	}
	for i := 0; i < n; i++ {
		for p := range per {
			out = append(out, per[p][i])
		}
	}
	return out
}

// A batch over several partitions is written by two transactions at once
// (writers: 2, the default), each holding whole partitions: every row
// lands once, each partition's rows in offset order, and with
// exactly-once each partition's offset is stored with its rows.
func TestSQLBatchIsSplitByPartitionAcrossWriters(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			tbl, pipe := uniqueName("split"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			seq := "seq bigserial"
			if kind == "mysql" {
				seq = "seq bigint AUTO_INCREMENT PRIMARY KEY"
			}
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (%s, id bigint, name text, price double precision, _partition integer, _offset bigint)", tbl, seq))
			cfg := d.cfg
			cfg.Table = tbl
			s := newSink(t, d, pipe, cfg, true)
			batch := interleaved(t, 3, 1500)
			if err := s.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 4500 {
				t.Fatalf("rows = %d, want 4500", n)
			}
			// Within a partition, insertion order (seq) follows offsets.
			out := d.int(t, fmt.Sprintf(`SELECT count(*) FROM %[1]s a JOIN %[1]s b
				ON a._partition = b._partition AND a._offset < b._offset AND a.seq > b.seq`, tbl))
			if out != 0 {
				t.Fatalf("%d pairs of rows of one partition inserted out of offset order", out)
			}
			if kind == "postgres" {
				if n := d.int(t, fmt.Sprintf("SELECT count(DISTINCT xmin::text) FROM %s", tbl)); n != 2 {
					t.Fatalf("the batch was written by %d transactions, want 2", n)
				}
				if n := d.int(t, fmt.Sprintf("SELECT max(c) FROM (SELECT count(DISTINCT xmin::text) c FROM %s GROUP BY _partition) x", tbl)); n != 1 {
					t.Fatalf("a partition's rows span %d transactions, want 1", n)
				}
			}
			offs, err := s.(connector.OffsetStore).LoadOffsets(ctx, "in", []int32{0, 1, 2})
			if err != nil {
				t.Fatal(err)
			}
			for p := int32(0); p < 3; p++ {
				if want := int64(p)*1_000_000 + 1500; offs[p] != want {
					t.Fatalf("stored offsets = %v, want partition %d at %d", offs, p, want)
				}
			}
		})
	}
}

// When one transaction of a split batch fails and the others commit, the
// retry of the batch writes only the partitions that failed: nothing
// twice, even with at-least-once delivery.
func TestSQLSplitBatchReportsOnlyTheFailedPartitionNotWritten(t *testing.T) {
	d := openTestDB(t, "postgres")
	ctx := context.Background()
	tbl, pipe := uniqueName("splitretry"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	fail := tbl + "_fail"
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name text, price double precision, _partition integer)", tbl))
	// Sequences are not transactional: the first row of partition 1 ever
	// inserted fails with a serialization failure (transient), later ones
	// pass.
	d.exec(t, fmt.Sprintf("CREATE SEQUENCE %s", fail))
	d.exec(t, fmt.Sprintf(`CREATE FUNCTION %[1]s_fn() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW._partition = 1 AND nextval('%[1]s') = 1 THEN
				RAISE EXCEPTION 'injected' USING ERRCODE = '40001';
			END IF;
			RETURN NEW;
		END $$`, fail))
	d.exec(t, fmt.Sprintf("CREATE TRIGGER %[1]s_trg BEFORE INSERT ON %[2]s FOR EACH ROW EXECUTE FUNCTION %[1]s_fn()", fail, tbl))
	t.Cleanup(func() {
		d.exec(t, "DROP TABLE IF EXISTS "+tbl)
		d.exec(t, fmt.Sprintf("DROP FUNCTION IF EXISTS %s_fn() CASCADE", fail))
		d.exec(t, "DROP SEQUENCE IF EXISTS "+fail)
	})
	cfg := d.cfg
	cfg.Table = tbl
	s := newSink(t, d, pipe, cfg, false)
	batch := interleaved(t, 3, 1500)
	err := s.Write(ctx, batch)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("first Write = %v, want the injected failure", err)
	}
	// The sink says which records are not written (those of the failed
	// transaction's partition) and why; the engine writes only them again.
	var be *connector.BatchError
	if !errors.As(err, &be) || connector.IsPermanent(err) || be.Cause == nil || len(be.NotWritten) != 1500 || len(be.Failed) != 0 {
		t.Fatalf("first Write = %v, want a transient failure with the 1500 records of one partition not written", err)
	}
	for _, r := range be.NotWritten {
		if r.Partition != be.NotWritten[0].Partition {
			t.Fatalf("not written: partitions %d and %d; want one partition's records", r.Partition, be.NotWritten[0].Partition)
		}
	}
	if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 3000 {
		t.Fatalf("after the failure: %d rows, want the 3000 of the two partitions whose transaction committed", n)
	}
	if err := s.Write(ctx, be.NotWritten); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := d.int(t, fmt.Sprintf("SELECT count(*) - count(DISTINCT (_partition, id)) FROM %s", tbl)); n != 0 {
		t.Fatalf("%d rows written twice", n)
	}
	if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 4500 {
		t.Fatalf("rows = %d, want 4500", n)
	}
}
