package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// TestBigQueryConnectionDroppedMidAppendLosesNoRow: the sink's gRPC
// connections to BigQuery fail while it appends: reset in the middle of
// the appends, answers lost after BigQuery appended the rows (then reset),
// and a connection cut 32 KiB into its traffic. The sink reconnects and
// appends again by itself; every row lands. The default stream is
// at-least-once: an append whose answer was lost is appended twice, and
// the sink counts such rows as possible duplicates.
func TestBigQueryConnectionDroppedMidAppendLosesNoRow(t *testing.T) {
	const n, tables, parts = 15000, 50, 3
	e, addrs := startBQEmulator(t, bqemu.Faults{Latency: 10 * time.Millisecond})
	proxy := startFaultProxy(t, addrs.GRPC)
	proxied := addrs
	proxied.GRPC = proxy.Addr()
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "events", 6)
	r := bqRunPipeline(t, fmt.Sprintf(`
name: events
source:
  kafka: {brokers: [%s], topics: [events], group: events-bq}
format: {value: json}
on_error: dlq
batch: {max_records: 2000}
`, brokers[0])+bqSinkYAML(proxied, "events-{{.Value.kind}}", 4, bqCreate))

	appendedBefore := func() int64 { return e.Stats().RowsAppended }
	for i := 0; i < parts; i++ {
		before := appendedBefore()
		switch i {
		case 1: // BigQuery appends, the sink never hears it
			proxy.DropAnswers(0, 0)
		case 2: // cut in the middle of the appends' traffic
			proxy.CutAfter(nil, 32<<10)
		}
		bqProduceJSON(t, brokers, "events", i*n/parts, n/parts, bqEventJSON(tables))
		switch i {
		case 0:
			eventually(t, 30*time.Second, "appends under way", func() bool { return appendedBefore() > before })
			proxy.ResetAll()
		case 1:
			eventually(t, 30*time.Second, "an append's answer dropped", func() bool { return proxy.Stats().DroppedBytes > 0 })
			proxy.ResetAll()
			if err := proxy.Pass(); err != nil {
				t.Fatal(err)
			}
		case 2:
			eventually(t, 30*time.Second, "the cut", func() bool { return proxy.Stats().Cuts == 1 && proxy.Stats().Resets > 0 })
		}
	}
	bqWaitCommitted(t, brokers, "events-bq", "events", 45*time.Second)
	st := r.p.Status()
	r.stop()
	ids, _ := bqRowsByID(t, e)
	dups := bqCheckOnce(t, ids, n)
	ss := r.sink.Stats()
	if st.DeadLettered != 0 || st.Error != "" {
		t.Fatalf("pipeline status: %d dead-lettered, error %q; a dropped connection is transient", st.DeadLettered, st.Error)
	}
	if int64(dups) > ss.PossibleDuplicates {
		t.Fatalf("%d duplicate rows, but the sink counted %d possible", dups, ss.PossibleDuplicates)
	}
	t.Logf("%d connections reset by the proxy: %d rows in, %d distinct rows out, %d duplicates (%d possible), %d retried appends, %d pipeline retries",
		proxy.Stats().Resets, n, len(ids), dups, ss.PossibleDuplicates, ss.Retries, st.Retries)
}
