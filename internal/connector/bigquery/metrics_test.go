package bigquery

import (
	"context"
	"testing"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/metrics"
)

func TestSinkConnectionsGaugeCountsAppendStreamsWhileOpen(t *testing.T) {
	_, addrs := startEmulator(t, bqemu.Faults{})
	cfg := sinkConfig(addrs, "films")
	s := newSink(t, cfg)
	if bad := write(t, s, []*connector.Record{jsonRecord(t, "films", 1, `{"id":1}`)}); len(bad) > 0 {
		t.Fatalf("refused: %v", bad[0])
	}
	// An append went through, on a stream that stays open for the next.
	if n, ok := exportedConnections(t, t.Name()); !ok || n < 1 || n > float64(cfg.MaxConnections) {
		t.Fatalf("sluice_sink_connections{pipeline=%q,sink=\"bigquery\"} = %v (exported: %v), want 1..%d", t.Name(), n, ok, cfg.MaxConnections)
	}
	s.Close(context.Background())
	if _, ok := exportedConnections(t, t.Name()); ok {
		t.Fatal("sluice_sink_connections still exported after Close")
	}
}

// exportedConnections is the bigquery sink's sluice_sink_connections as
// /metrics serves it, and whether it is there.
func exportedConnections(t *testing.T, pipeline string) (float64, bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sluice_sink_connections" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["pipeline"] == pipeline && labels["sink"] == "bigquery" {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}
