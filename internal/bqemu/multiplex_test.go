package bqemu

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// multiplexRun appends batches to nTables tables through one multiplexed
// client and checks every row landed exactly once. It returns the stats
// and the appends per second it saw.
func multiplexRun(t *testing.T, nTables, poolLimit, batchesPerTable, rowsPerBatch int, latency time.Duration) (Stats, float64) {
	t.Helper()
	e, addrs := startEmulator(t, Options{Faults: Faults{Latency: latency}})
	// Two shapes of table, so one stream carries different writer schemas.
	schemas := [][]*bq.TableFieldSchema{eventSchema()[:2], eventSchema()[:3]} // id, name (, score)
	var mds []protoreflect.MessageDescriptor
	var dps []*descriptorpb.DescriptorProto
	for _, s := range schemas {
		md, dp := writerSchema(t, s)
		mds, dps = append(mds, md), append(dps, dp)
	}
	writers := make([]*managedwriter.ManagedStream, nTables)
	mw := writerClient(t, addrs, managedwriter.WithMultiplexing(), managedwriter.WithMultiplexPoolLimit(poolLimit))
	for i := range nTables {
		table := createTable(t, e, "d", tableID(i), schemas[i%2])
		w, err := mw.NewManagedStream(context.Background(),
			managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dps[i%2]))
		if err != nil {
			t.Fatalf("NewManagedStream %d: %v", i, err)
		}
		t.Cleanup(func() { w.Close() })
		writers[i] = w
	}
	start := time.Now()
	var (
		mu      sync.Mutex
		results []*managedwriter.AppendResult
		wg      sync.WaitGroup
	)
	// Writers append concurrently, interleaving tables on the connections.
	for i, w := range writers {
		wg.Go(func() {
			for b := range batchesPerTable {
				var batch [][]byte
				for r := range rowsPerBatch {
					vals := map[string]any{"id": (b*rowsPerBatch+r)*1000 + i, "name": tableID(i)}
					if i%2 == 1 {
						vals["score"] = float64(i)
					}
					batch = append(batch, encodeRow(t, mds[i%2], vals))
				}
				res, err := w.AppendRows(context.Background(), batch)
				if err != nil {
					t.Errorf("AppendRows: %v", err)
					return
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		if _, _, err := waitResult(t, r); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	elapsed := time.Since(start)
	for i := range nTables {
		if i%2 == 1 {
			rows, err := e.Rows(context.Background(), testProject, "d", tableID(i))
			if err != nil || rows[0]["score"] != float64(i) || rows[0]["name"] != tableID(i) {
				t.Fatalf("table %s: first row %v, %v: rows routed to the wrong table or schema", tableID(i), rows[0], err)
			}
		}
		ids := rowIDs(t, e, "d", tableID(i))
		slices.Sort(ids)
		if len(ids) != batchesPerTable*rowsPerBatch {
			t.Fatalf("table %s has %d rows, want %d", tableID(i), len(ids), batchesPerTable*rowsPerBatch)
		}
		for n, id := range ids {
			if id != int64(n*1000+i) {
				t.Fatalf("table %s row %d has id %d, want %d", tableID(i), n, id, n*1000+i)
			}
		}
	}
	return e.Stats(), float64(len(results)) / elapsed.Seconds()
}

func TestMultiplexingBoundsConnections(t *testing.T) {
	// managedwriter dials a gRPC pool of min(GOMAXPROCS, 4) TCP connections
	// and, multiplexing, opens at most WithMultiplexPoolLimit streams.
	grpcPool := int64(min(runtime.GOMAXPROCS(0), 4))
	for _, tc := range []struct {
		tables, batches int
		latency         time.Duration
	}{
		{1, 50, 0},
		{200, 3, 0},
		// Responses held back keep hundreds of appends in flight: the
		// client's router may then see its connection loaded and add one,
		// up to the limit and no further.
		{200, 20, 300 * time.Millisecond},
	} {
		stats, rate := multiplexRun(t, tc.tables, 2, tc.batches, 10, tc.latency)
		t.Logf("%d tables, latency %v: peak TCP connections %d, peak AppendRows streams %d, total streams %d, %d appends at %.0f appends/s",
			tc.tables, tc.latency, stats.PeakConnections, stats.PeakStreams, stats.TotalStreams, stats.Appends, rate)
		if stats.PeakStreams > 2 || stats.PeakStreams < 1 {
			t.Errorf("%d tables: peak streams %d, want 1..2 (the pool limit)", tc.tables, stats.PeakStreams)
		}
		if stats.PeakConnections > grpcPool {
			t.Errorf("%d tables: peak TCP connections %d, want <= %d", tc.tables, stats.PeakConnections, grpcPool)
		}
		if want := int64(tc.tables * tc.batches * 10); stats.RowsAppended != want {
			t.Errorf("%d tables: stats count %d rows appended, want %d", tc.tables, stats.RowsAppended, want)
		}
	}
}
