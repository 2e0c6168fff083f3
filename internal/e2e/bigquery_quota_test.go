package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// bqEventJSON is a JSON event for one of `tables` tables.
func bqEventJSON(tables int) func(i int) string {
	return func(i int) string {
		return fmt.Sprintf(`{"id":%d,"kind":"k%04d","amount":%d.25,"tags":["a","b%d"],"ctx":{"ip":"10.0.0.%d"}}`, i, i%tables, i%1000, i%7, i%250)
	}
}

// bqRunJSON produces n JSON events over `tables` tables, runs a
// pipeline into the emulator until every offset is committed, and
// returns the pipeline for inspection. One consumer: a rebalance while a
// batch is in flight re-reads it (at-least-once), which would hide what
// these tests count, the duplicates the sink's own retries make.
func bqRunJSON(t *testing.T, addrs bqemu.Addrs, n, tables, maxConnections int, sinkExtra string) *bqRunning {
	t.Helper()
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "events", 6)
	bqProduceJSON(t, brokers, "events", 0, n, bqEventJSON(tables))
	r := bqRunPipeline(t, fmt.Sprintf(`
name: events
source:
  kafka: {brokers: [%s], topics: [events], group: events-bq}
format: {value: json}
on_error: dlq
batch: {max_records: 2000}
`, brokers[0])+bqSinkYAML(addrs, "events-{{.Value.kind}}", maxConnections, bqCreate+sinkExtra))
	bqWaitCommitted(t, brokers, "events-bq", "events", 3*time.Minute)
	return r
}

func TestBigQueryQuota10AndMaxConnections4NeverHitsTheQuota(t *testing.T) {
	const n, tables = 10000, 500
	e, addrs := startBQEmulator(t, bqemu.Faults{MaxConnections: 10, Latency: 2 * time.Millisecond})
	r := bqRunJSON(t, addrs, n, tables, 4, "")
	bqCheckNoFailure(t, r.p.Status())
	ids, _ := bqRowsByID(t, e)
	if dups := bqCheckOnce(t, ids, n); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	st := e.Stats()
	t.Logf("quota 10, max_connections 4: peak streams %d, peak TCP %d, refused %d", st.PeakStreams, st.PeakConnections, st.RejectedStreams)
	if st.RejectedStreams != 0 || st.PeakStreams > 4 || st.PeakConnections > 4 {
		t.Fatalf("%d streams refused for quota, peak streams %d, peak TCP %d: want none refused and both <= 4",
			st.RejectedStreams, st.PeakStreams, st.PeakConnections)
	}
}

func TestBigQueryMaxConnectionsAboveTheQuotaBacksOffAndLosesNothing(t *testing.T) {
	const n, tables = 6000, 300
	e, addrs := startBQEmulator(t, bqemu.Faults{MaxConnections: 2, Latency: 20 * time.Millisecond})
	r := bqRunJSON(t, addrs, n, tables, 8, ", max_in_flight_appends: 4")
	bqCheckNoFailure(t, r.p.Status())
	ids, _ := bqRowsByID(t, e)
	dups := bqCheckOnce(t, ids, n)
	st, ss := e.Stats(), r.sink.Stats()
	t.Logf("quota 2, max_connections 8: %d streams refused, connection limit lowered to %d, %d retried appends, %d duplicate rows (%d possible)",
		st.RejectedStreams, ss.ConnectionLimit, ss.Retries, dups, ss.PossibleDuplicates)
	if st.RejectedStreams == 0 {
		t.Fatal("no stream was refused: the test did not exceed the quota")
	}
	if ss.ConnectionLimit > 2 {
		t.Fatalf("the sink still allows %d connections after the quota refused the third", ss.ConnectionLimit)
	}
	if int64(dups) > ss.PossibleDuplicates {
		t.Fatalf("%d duplicate rows, but the sink counted %d possible", dups, ss.PossibleDuplicates)
	}
}

func TestBigQueryInjectedQuotaAndUnavailableFaultsLoseNothing(t *testing.T) {
	n, tables := 6000, 100
	if longRun() {
		n = 60000
	}
	quota := bqemu.Faults{Code: codes.ResourceExhausted, Rate: 0.05}
	e, addrs := startBQEmulator(t, quota)
	// Bursts of UNAVAILABLE cutting the streams, between stretches of 5%
	// RESOURCE_EXHAUSTED, until the pipeline is done.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if i%2 == 0 {
				e.SetFaults(bqemu.Faults{Code: codes.Unavailable, Next: 5, Terminate: true})
			} else {
				e.SetFaults(quota)
			}
		}
	})
	r := bqRunJSON(t, addrs, n, tables, 4, "")
	close(done)
	wg.Wait()
	bqCheckNoFailure(t, r.p.Status())
	ids, _ := bqRowsByID(t, e)
	dups := bqCheckOnce(t, ids, n)
	st, ss := e.Stats(), r.sink.Stats()
	t.Logf("%d faults injected (%d appends): %d retried appends, %d duplicate rows, %d possible duplicates",
		st.FaultsInjected, st.Appends, ss.Retries, dups, ss.PossibleDuplicates)
	if st.FaultsInjected < 10 {
		t.Fatalf("only %d faults injected: the test did not exercise retries", st.FaultsInjected)
	}
	if dups != 0 {
		// The emulator writes nothing of a failed append: a duplicate means
		// an append that succeeded was sent again.
		t.Fatalf("%d duplicate rows", dups)
	}
	if st.PeakStreams > 4 || st.PeakConnections > 4 {
		t.Fatalf("reconnecting after faults: peak streams %d, TCP %d; want <= max_connections 4", st.PeakStreams, st.PeakConnections)
	}
}
