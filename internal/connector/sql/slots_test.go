package sql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

// TestSQLExactlyOnceBySlotSkipsWhatEachSlotHolds: with parallelism,
// workers write the slots of one partition in any order relative to each
// other; a replay of the whole partition adds nothing, and the partition
// resumes from the group's offset (nothing stored for it). A run without
// parallelism over those offsets refuses to start.
func TestSQLExactlyOnceBySlotSkipsWhatEachSlotHolds(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			s, cfg, pipe := slotSink(t, d, "")
			tbl := cfg.Table
			recs := items(t, "in", 0, 0, 100)
			bySlot := make([][]*connector.Record, 4)
			for i, r := range recs {
				r.Slot = 10 + i%4
				bySlot[i%4] = append(bySlot[i%4], r)
			}
			// Slot 13 runs ahead of the others, as a fast worker does;
			// slot 12 has written only its first half.
			for _, batch := range [][]*connector.Record{bySlot[3], bySlot[2][:12], append(bySlot[0], bySlot[1]...)} {
				if err := s.Write(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if n := d.int(t, "SELECT count(*) FROM "+tbl); n != 87 {
				t.Fatalf("rows = %d, want 87", n)
			}
			// After a crash the whole partition is read again from the
			// group's offset: only slot 12's second half is new.
			if err := s.Write(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if n, ids := d.int(t, "SELECT count(*) FROM "+tbl), d.int(t, "SELECT count(DISTINCT id) FROM "+tbl); n != 100 || ids != 100 {
				t.Fatalf("rows = %d (%d distinct), want 100", n, ids)
			}
			offs, err := s.(connector.OffsetStore).LoadOffsets(ctx, "in", []int32{0})
			if err != nil || len(offs) != 0 {
				t.Fatalf("stored offsets = %v, %v; a partition with slots resumes from the group's offset", offs, err)
			}
			plain := newSink(t, d, pipe, cfg, true)
			_, err = plain.(connector.OffsetStore).LoadOffsets(ctx, "in", []int32{0})
			if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "ran with parallelism") {
				t.Fatalf("without parallelism over offsets per slot: err = %v, want a permanent error naming parallelism", err)
			}
		})
	}
}

// TestSQLExactlyOnceSlotWritesLockOnlyTheirSlots: the workers of one
// partition write disjoint slots, and a write must not wait for another
// slot's transaction (when every write locked the whole partition's slot
// rows, exactly-once with 16 workers ran no faster than with one). While
// another transaction holds slot 11's row, a write of slot 12 goes
// through, and a write of slot 11 waits (the connections give up on a
// lock after 1 s), then goes through once the lock is released.
func TestSQLExactlyOnceSlotWritesLockOnlyTheirSlots(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			s, cfg, pipe := slotSink(t, d, map[string]string{"postgres": "lock_timeout=1000", "mysql": "innodb_lock_wait_timeout=1"}[kind])
			tbl := cfg.Table
			recs := items(t, "in", 0, 0, 40)
			for i, r := range recs {
				r.Slot = 11 + i/10%2 // 0-9, 20-29: slot 11; 10-19, 30-39: slot 12
			}
			if err := s.Write(ctx, recs[:20]); err != nil {
				t.Fatal(err)
			}
			// By the primary key: a scan would lock every row it passes
			// (MySQL's repeatable read), the other slots' rows too.
			part := map[string]string{"postgres": `"partition"`, "mysql": "`partition`"}[kind]
			lock := fmt.Sprintf("SELECT next_offset FROM sluice_slot_offsets WHERE pipeline = '%s' AND topic = 'in' AND %s = 0 AND slot = 11 FOR UPDATE", pipe, part)
			var release func()
			if kind == "postgres" {
				tx, err := d.pg.Begin(ctx)
				if err == nil {
					_, err = tx.Exec(ctx, lock)
				}
				if err != nil {
					t.Fatal(err)
				}
				release = func() { _ = tx.Rollback(ctx) }
			} else {
				tx, err := d.std.BeginTx(ctx, nil)
				if err == nil {
					_, err = tx.ExecContext(ctx, lock)
				}
				if err != nil {
					t.Fatal(err)
				}
				release = func() { _ = tx.Rollback() }
			}
			if err := s.Write(ctx, recs[30:]); err != nil {
				release()
				t.Fatalf("writing slot 12 while slot 11 is locked: %v", err)
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.Write(wctx, recs[20:30])
			cancel()
			release()
			if err == nil {
				t.Fatal("writing slot 11 while another transaction holds its row went through: two writers of a slot would not meet on its lock")
			}
			if err := s.Write(ctx, recs[20:30]); err != nil {
				t.Fatal(err)
			}
			if n, ids := d.int(t, "SELECT count(*) FROM "+tbl), d.int(t, "SELECT count(DISTINCT id) FROM "+tbl); n != 40 || ids != 40 {
				t.Fatalf("rows = %d (%d distinct), want 40", n, ids)
			}
		})
	}
}

// slotSink makes a table and an exactly-once sink with offsets per slot
// into it, with dsnParams added to the connection string.
func slotSink(t *testing.T, d *testDB, dsnParams string) (connector.Sink, config.SQLSink, string) {
	t.Helper()
	tbl, pipe := uniqueName("slots"), uniqueName("p")
	d.dropAfter(t, pipe, tbl)
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name text, price double precision)", tbl))
	cfg := d.cfg
	cfg.Table = tbl
	if dsnParams != "" {
		cfg.DSN += map[bool]string{true: "&", false: "?"}[strings.Contains(cfg.DSN, "?")] + dsnParams
	}
	s, err := sqlsink.New(context.Background(), sqlsink.Options{Kind: d.kind, Config: cfg, Pipeline: pipe, ExactlyOnce: true, Slots: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, cfg, pipe
}
