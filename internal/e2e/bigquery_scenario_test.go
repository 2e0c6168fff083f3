package e2e

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// TestBigQueryAvroOver1000DynamicTablesKeepsConnectionsBounded is the
// reported scenario: Avro PurchaseRequestEvents in Confluent wire format
// from a schema registry, one process, table names from the record over
// 1,000 distinct tables. Google's Dataflow template opened a connection
// per destination and exhausted the quota; here the emulator must never
// see more than max_connections TCP connections or AppendRows streams,
// and every row lands once.
func TestBigQueryAvroOver1000DynamicTablesKeepsConnectionsBounded(t *testing.T) {
	n, perSecond := 20000, 0.0
	if longRun() {
		n, perSecond = 60000, 1000 // 60 s at 1,000 events/s
	}
	const tables, maxConnections = 1000, 4
	e, addrs := startBQEmulator(t, bqemu.Faults{})
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "purchases", 6)
	regURL, _ := startRegistry(t, "127.0.0.1:0", "")
	schema := fmt.Sprintf(bqPurchaseAvro, "")
	fields := func(i int) map[string]any { return bqPurchaseFields(i, tables) }
	if perSecond == 0 {
		bqProduceAvro(t, brokers, regURL, "purchases", schema, n, 0, fields)
	}
	start := time.Now()
	r := bqRunPipeline(t, fmt.Sprintf(`
name: purchases
source:
  kafka: {brokers: [%s], topics: [purchases], group: purchases-bq}
format: {value: avro-confluent, schema_registry: {url: %q}}
on_error: dlq
`, brokers[0], regURL)+bqSinkYAML(addrs, "kafka-{{.Value.store}}", maxConnections, bqCreate))
	if perSecond > 0 {
		bqProduceAvro(t, brokers, regURL, "purchases", schema, n, perSecond, fields)
	}
	bqWaitCommitted(t, brokers, "purchases-bq", "purchases", 5*time.Minute)
	elapsed := time.Since(start)
	bqCheckNoFailure(t, r.p.Status())

	ids, byTable := bqRowsByID(t, e)
	if dups := bqCheckOnce(t, ids, n); dups != 0 {
		t.Fatalf("%d duplicate rows without a crash or a retried append", dups)
	}
	if len(byTable) != tables {
		t.Fatalf("rows went to %d tables, want %d", len(byTable), tables)
	}
	st := e.Stats()
	t.Logf("%d Avro records into %d tables in %v (%.0f rows/s): peak TCP connections %d, peak AppendRows streams %d, %d appends; sink %+v",
		n, tables, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), st.PeakConnections, st.PeakStreams, st.Appends, r.sink.Stats())
	if st.PeakConnections > maxConnections || st.PeakStreams > maxConnections {
		t.Fatalf("peak TCP connections %d, AppendRows streams %d: want both <= max_connections %d whatever the %d tables",
			st.PeakConnections, st.PeakStreams, maxConnections, tables)
	}

	rows, err := e.Rows(context.Background(), bqProject, bqDataset, "kafka-store-0007")
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	for _, r := range rows {
		if r["id"] == int64(7) {
			row = r
		}
	}
	if row["id"] != int64(7) || row["amount"].(*big.Rat).Cmp(big.NewRat(7, 100)) != 0 ||
		!row["requested_at"].(time.Time).Equal(time.UnixMilli(1758600000007)) || row["note"] != nil ||
		fmt.Sprint(row["items"]) != "[map[qty:2 sku:sku-7]]" {
		t.Fatalf("row 7 of kafka-store-0007 = %v", row)
	}
}
