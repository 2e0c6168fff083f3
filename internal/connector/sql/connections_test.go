package sql_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
	"github.com/sluice-dev/sluice/internal/metrics"
)

func TestSQLSinkConnectionsGaugeWhileOpenRemovedOnClose(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := openTestDB(t, kind)
			tbl, pipe := uniqueName("conns"), uniqueName("p")
			d.dropAfter(t, pipe, tbl)
			cfg := d.cfg
			cfg.Table, cfg.CreateTable = tbl, true
			ctx := context.Background()
			s, err := sqlsink.New(ctx, sqlsink.Options{Kind: kind, Config: cfg, Pipeline: pipe, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, items(t, "films", 0, 0, 3)); err != nil {
				t.Fatal(err)
			}
			// The pool bound, and the merge session outside it.
			if n := gaugeValue(t, metrics.SinkConnections.WithLabelValues(pipe, kind)); n < 1 || n > float64(cfg.MaxConnections+1) {
				t.Errorf("sluice_sink_connections{pipeline=%q,sink=%q} = %v while open, want 1..%d", pipe, kind, n, cfg.MaxConnections+1)
			}
			s.Close(ctx)
			if metrics.SinkConnections.DeleteLabelValues(pipe, kind) {
				t.Errorf("sluice_sink_connections{pipeline=%q,sink=%q} still exported after Close", pipe, kind)
			}
		})
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
