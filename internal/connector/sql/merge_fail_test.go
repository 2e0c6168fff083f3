package sql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Regression: a merge statement with a syntax error was retried forever
// (every 30 s at most, a Warn each time) while the staging table grew,
// and in exact pause mode the writer waited for that merge forever. It is
// now a permanent error: the next write (or the one waiting for the merge)
// returns it, saying what to fix, so the pipeline stops; the staged rows
// stay for a merge after the fix.
func TestSQLMergeStatementSyntaxErrorStopsThePipeline(t *testing.T) {
	for _, kind := range kinds {
		for _, exact := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/exact=%v", kind, exact), func(t *testing.T) {
				d := openTestDB(t, kind)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				pipe := uniqueName("p")
				staging, _, _, _ := mergeSetup(t, d, pipe)
				cfg := d.cfg
				cfg.StagingTable = staging
				cfg.Merge = &config.Merge{Statements: []string{"DELET FROM {{.Table}} WHERE _sluice_batch <= {{.HighWaterMark}}"},
					EveryRecords: 10, Exact: exact, Mode: config.MergePause, History: 10}
				s := newSink(t, d, pipe, cfg, false)
				var err error
				for off := int64(0); err == nil && ctx.Err() == nil; off += 25 {
					err = s.Write(ctx, items(t, "in", 0, off, 25))
				}
				if ctx.Err() != nil {
					t.Fatalf("writes went on for 30 s past a merge that cannot work (last error: %v)", err)
				}
				if !connector.IsPermanent(err) {
					t.Fatalf("write: %v, want a permanent error", err)
				}
				for _, want := range []string{"merging staging table", "syntax", "merge.statements"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%q does not say %q", err, want)
					}
				}
				m := s.(connector.Merger)
				if h := m.Merges(); len(h) != 1 || h[0].Error == "" {
					t.Errorf("merge history %+v, want one failed attempt, not retries", h)
				}
				if merr := m.MergeNow(ctx); !connector.IsPermanent(merr) {
					t.Errorf("merge now: %v, want the permanent failure", merr)
				}
				if n := d.int(t, "SELECT count(*) FROM "+staging); n < 10 {
					t.Fatalf("staging rows = %d, want the written rows kept", n)
				}
			})
		}
	}
}
