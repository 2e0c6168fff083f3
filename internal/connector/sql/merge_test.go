package sql_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// mergeSetup makes a staging table, a final table and a merge log, and
// returns merge statements that move rows at or below the high-water mark
// and log how many they moved.
func mergeSetup(t *testing.T, d *testDB, pipe string) (staging, final, log string, stmts []string) {
	staging, final, log = uniqueName("stg"), uniqueName("fin"), uniqueName("mlog")
	d.dropAfter(t, pipe, staging, final, log)
	ts := "timestamp(6)"
	if d.kind == "postgres" {
		ts = "timestamptz"
	}
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name varchar(100), price double precision, _partition integer, _offset bigint, _sluice_batch bigint NOT NULL DEFAULT 0)", staging))
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name varchar(100), price double precision)", final))
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (hwm bigint, n bigint, at %s)", log, ts))
	now := "CURRENT_TIMESTAMP(6)"
	switch d.kind {
	case "postgres":
		now = "clock_timestamp()"
	case "sqlite":
		now = "strftime('%Y-%m-%d %H:%M:%f','now')"
	}
	stmts = []string{
		fmt.Sprintf("INSERT INTO %s SELECT {{.HighWaterMark}}, count(*), %s FROM %s WHERE _sluice_batch <= {{.HighWaterMark}}", log, now, staging),
		fmt.Sprintf("INSERT INTO %s SELECT id, name, price FROM %s WHERE _sluice_batch <= {{.HighWaterMark}}", final, staging),
		fmt.Sprintf("DELETE FROM %s WHERE _sluice_batch <= {{.HighWaterMark}}", staging),
	}
	return staging, final, log, stmts
}

func TestSQLExactPauseSplitsAWriteAtTheThreshold(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			staging, final, log, stmts := mergeSetup(t, d, pipe)
			cfg := d.cfg
			cfg.StagingTable = staging
			cfg.Merge = &config.Merge{Statements: stmts, EveryRecords: 10, Exact: true, Mode: config.MergePause, History: 10}
			s := newSink(t, d, pipe, cfg, false)
			// One write of 35 rows: three full batches are merged while it
			// runs, 5 rows stay in staging.
			if err := s.Write(ctx, items(t, "in", 0, 0, 35)); err != nil {
				t.Fatal(err)
			}
			if got := d.strings(t, fmt.Sprintf("SELECT n FROM %s ORDER BY hwm", log)); fmt.Sprint(got) != "[10 10 10]" {
				t.Fatalf("merged batch sizes = %v, want [10 10 10]", got)
			}
			if n := d.int(t, "SELECT count(*) FROM "+staging); n != 5 {
				t.Fatalf("staging rows = %d, want 5", n)
			}
			if err := s.(connector.Merger).MergeNow(ctx); err != nil {
				t.Fatal(err)
			}
			if n := d.int(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s", final)); n != 35 {
				t.Fatalf("final rows = %d, want 35", n)
			}
			var sizes []int64
			var trig []connector.MergeTrigger
			for _, m := range s.(connector.Merger).Merges() {
				if m.Error != "" {
					t.Fatalf("merge failed: %s", m.Error)
				}
				sizes = append(sizes, m.Records)
				trig = append(trig, m.Trigger)
			}
			if fmt.Sprint(sizes) != "[10 10 10 5]" || trig[0] != connector.TriggerRecords || trig[3] != connector.TriggerManual {
				t.Fatalf("history sizes %v triggers %v, want [10 10 10 5] records... manual", sizes, trig)
			}
		})
	}
}

func TestSQLContinuousMergeTakesOnlyRowsAtOrBelowTheHighWaterMark(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			staging, final, log, stmts := mergeSetup(t, d, pipe)
			cfg := d.cfg
			cfg.StagingTable = staging
			cfg.Merge = &config.Merge{Statements: stmts, MaxInterval: time.Hour, Mode: config.MergeContinuous, History: 100}
			s := newSink(t, d, pipe, cfg, false)
			const writers, perWriter, batch = 3, 40, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers+1)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perWriter; i++ {
						if err := s.Write(ctx, items(t, "in", int32(w), int64(i*batch), batch)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			stop := make(chan struct{})
			var merges sync.WaitGroup
			merges.Add(1)
			go func() {
				defer merges.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := s.(connector.Merger).MergeNow(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
			wg.Wait()
			close(stop)
			merges.Wait()
			if err := s.(connector.Merger).MergeNow(ctx); err != nil {
				t.Fatal(err)
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			const total = writers * perWriter * batch
			if n := d.int(t, "SELECT count(*) FROM "+final); n != total {
				t.Fatalf("final rows = %d, want %d", n, total)
			}
			if n := d.int(t, "SELECT count(*) FROM "+staging); n != 0 {
				t.Fatalf("staging rows left = %d, want 0", n)
			}
			if n := d.int(t, "SELECT sum(n) FROM "+log); n != total {
				t.Fatalf("rows merged per log = %d, want %d", n, total)
			}
			if n := d.int(t, "SELECT count(*) FROM "+log); n < 3 {
				t.Fatalf("merges = %d, want several while writing", n)
			}
		})
	}
}

func TestSQLIdleTriggerMergesTheTailOfABurst(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			staging, final, _, stmts := mergeSetup(t, d, pipe)
			cfg := d.cfg
			cfg.StagingTable = staging
			cfg.Merge = &config.Merge{Statements: stmts, EveryRecords: 1000, Idle: 300 * time.Millisecond, Mode: config.MergePause, History: 10}
			s := newSink(t, d, pipe, cfg, false)
			start := time.Now()
			if err := s.Write(ctx, items(t, "in", 0, 0, 30)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the idle trigger to merge the 30 rows", func() bool { return d.int(t, "SELECT count(*) FROM "+final) == 30 })
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Fatalf("merged after %v, before the idle period", took)
			}
			// The history entry follows the commit.
			waitFor(t, "the merge in the history", func() bool { return len(s.(connector.Merger).Merges()) > 0 })
			ms := s.(connector.Merger).Merges()
			if len(ms) != 1 || ms[0].Trigger != connector.TriggerIdle || ms[0].Records != 30 || ms[0].EndToEnd < 300*time.Millisecond {
				t.Fatalf("history = %+v, want one idle merge of 30 records, end to end >= 300ms", ms)
			}
		})
	}
}

func TestSQLFailedMergeIsRetriedAndReportedWithoutLosingRows(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			staging, final, log, stmts := mergeSetup(t, d, pipe)
			// The final table goes missing: merges fail until it is back.
			d.exec(t, "ALTER TABLE "+final+" RENAME TO "+final+"_away")
			t.Cleanup(func() { d.exec(t, "DROP TABLE IF EXISTS "+final+"_away") })
			cfg := d.cfg
			cfg.StagingTable = staging
			cfg.Merge = &config.Merge{Statements: stmts, EveryRecords: 20, Mode: config.MergePause, History: 10}
			s := newSink(t, d, pipe, cfg, true)
			if err := s.Write(ctx, items(t, "in", 0, 0, 50)); err != nil {
				t.Fatal(err)
			}
			m := s.(connector.Merger)
			waitFor(t, "a failed merge in the history", func() bool { return len(m.Merges()) > 0 })
			if h := m.Merges(); h[0].Error == "" || h[0].Records != 50 {
				t.Fatalf("first attempt = %+v, want a failure of the 50-row merge", h[0])
			}
			if n := d.int(t, "SELECT count(*) FROM "+staging); n != 50 {
				t.Fatalf("staging rows after the failed merge = %d, want all 50 kept", n)
			}
			d.exec(t, "ALTER TABLE "+final+"_away RENAME TO "+final)
			// Retries back off (0.5 s, 1 s, 2 s, ...): the next one after
			// the table came back may be seconds away on a loaded machine.
			waitFor(t, "the rows merged after the table came back", func() bool { return d.int(t, "SELECT count(*) FROM "+final) == 50 })
			// The history entry follows the commit.
			waitFor(t, "the successful merge in the history", func() bool { h := m.Merges(); return h[len(h)-1].Error == "" })
			h := m.Merges()
			if last := h[len(h)-1]; last.Error != "" || last.Records != 50 || last.Attempt < 2 {
				t.Fatalf("last merge = %+v, want a successful retry of the 50 rows", last)
			}
			if n := d.int(t, "SELECT sum(n) FROM "+log); n != 50 {
				t.Fatalf("merge log counts %d rows, want 50 merged once", n)
			}
		})
	}
}
