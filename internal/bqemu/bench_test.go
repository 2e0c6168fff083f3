package bqemu

import (
	"context"
	"testing"

	"cloud.google.com/go/bigquery/storage/managedwriter"
)

// BenchmarkMultiplexedAppend measures appends of 10 rows over ONE
// multiplexed AppendRows stream interleaving 20 tables, the shape of the
// sink's traffic; it reports appends/s (go test -bench Multiplexed -run ^$).
func BenchmarkMultiplexedAppend(b *testing.B) {
	const tables, rowsPerAppend = 20, 10
	e, addrs := startEmulator(b, Options{})
	schema := eventSchema()[:2]
	md, dp := writerSchema(b, schema)
	mw := writerClient(b, addrs, managedwriter.WithMultiplexing(), managedwriter.WithMultiplexPoolLimit(1))
	writers := make([]*managedwriter.ManagedStream, tables)
	for i := range writers {
		parent := createTable(b, e, "d", tableID(i), schema)
		w, err := mw.NewManagedStream(context.Background(),
			managedwriter.WithDestinationTable(parent), managedwriter.WithSchemaDescriptor(dp))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { w.Close() })
		writers[i] = w
	}
	batch := make([][]byte, rowsPerAppend)
	for i := range batch {
		batch[i] = encodeRow(b, md, map[string]any{"id": i, "name": "benchmark row"})
	}
	ctx := context.Background()
	results := make([]*managedwriter.AppendResult, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		r, err := writers[n%tables].AppendRows(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		results = append(results, r)
	}
	for _, r := range results {
		if _, err := r.GetResult(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	if s := e.Stats(); s.PeakStreams != 1 {
		b.Fatalf("peak streams %d, want 1", s.PeakStreams)
	}
}
