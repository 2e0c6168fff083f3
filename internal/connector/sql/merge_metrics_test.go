package sql_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

// sluice_merges_total and sluice_merge_seconds were declared but never
// updated: a dashboard showed no merges however many ran.
func TestSQLMergeMetricsCountEveryMergeAttempt(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			ctx := context.Background()
			pipe := uniqueName("p")
			staging, final, log, stmts := mergeSetup(t, d, pipe)
			// The first merge fails: its final table is missing.
			d.exec(t, "DROP TABLE "+final)
			cfg := d.cfg
			cfg.StagingTable = staging
			cfg.Merge = &config.Merge{Statements: stmts, EveryRecords: 10, MaxInterval: time.Hour, Mode: config.MergeContinuous, History: 100}
			s := newSink(t, d, pipe, cfg, false)
			if err := s.Write(ctx, items(t, "in", 0, 0, 10)); err != nil {
				t.Fatal(err)
			}
			failed := func() int {
				n := 0
				for _, m := range s.(connector.Merger).Merges() {
					if m.Error != "" {
						n++
					}
				}
				return n
			}
			waitFor(t, "a failed merge", func() bool { return failed() > 0 })
			d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint, name varchar(100), price double precision)", final))
			waitFor(t, "the 10 rows merged", func() bool { return d.int(t, "SELECT count(*) FROM "+final) == 10 })
			if err := s.Write(ctx, items(t, "in", 0, 10, 3)); err != nil {
				t.Fatal(err)
			}
			if err := s.(connector.Merger).MergeNow(ctx); err != nil {
				t.Fatal(err)
			}
			if n := d.int(t, "SELECT count(*) FROM "+log); n != 2 {
				t.Fatalf("merge log has %d rows, want 2 merges", n)
			}

			count := func(trigger, result string) float64 {
				var m dto.Metric
				if err := metrics.Merges.WithLabelValues(pipe, trigger, result).Write(&m); err != nil {
					t.Fatal(err)
				}
				return m.GetCounter().GetValue()
			}
			if got := count("records", "ok"); got != 1 {
				t.Errorf(`sluice_merges_total{trigger="records",result="ok"} = %v, want 1`, got)
			}
			if got, want := count("records", "error"), float64(failed()); got != want || got < 1 {
				t.Errorf(`sluice_merges_total{trigger="records",result="error"} = %v, want the %v failed attempts of the history`, got, want)
			}
			if got := count("manual", "ok"); got != 1 {
				t.Errorf(`sluice_merges_total{trigger="manual",result="ok"} = %v, want 1`, got)
			}
			var m dto.Metric
			if err := metrics.MergeSeconds.WithLabelValues(pipe).(prometheus.Histogram).Write(&m); err != nil {
				t.Fatal(err)
			}
			if n, sum := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(); n != 2 || sum <= 0 {
				t.Errorf("sluice_merge_seconds has %d samples summing to %v s, want the 2 successful merges", n, sum)
			}
		})
	}
}

// waitFor polls cond every 20 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
