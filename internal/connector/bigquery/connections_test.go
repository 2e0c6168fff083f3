package bigquery

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/connector"
)

// spread makes n JSON records over tables t0000..t<tables-1>, ids from first.
func spread(t testing.TB, first, n, tables int) []*connector.Record {
	out := make([]*connector.Record, 0, n)
	for i := first; i < first+n; i++ {
		out = append(out, jsonRecord(t, fmt.Sprintf("t%04d", i%tables), int64(i), fmt.Sprintf(`{"id":%d,"v":"x%d"}`, i, i)))
	}
	return out
}

// writeConcurrently writes batches from `writers` goroutines, as several
// consumers of a pipeline do, and fails on any refusal or error.
func writeConcurrently(t *testing.T, s *Sink, batches [][]*connector.Record, writers int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan []*connector.Record)
	for range writers {
		wg.Go(func() {
			for b := range next {
				if bad := write(t, s, b); len(bad) > 0 {
					t.Errorf("refused %d records, first: %v", len(bad), bad[0])
				}
			}
		})
	}
	for _, b := range batches {
		next <- b
	}
	close(next)
	wg.Wait()
}

// checkExactlyOnce checks every id of [0, n) is in its table once.
func checkExactlyOnce(t *testing.T, e *bqemu.Emulator, n, tables int) {
	t.Helper()
	total := 0
	for i := range tables {
		table := fmt.Sprintf("t%04d", i)
		ids := countIDs(t, e, table)
		for id, c := range ids {
			if c != 1 {
				t.Fatalf("table %s: id %d present %d times", table, id, c)
			}
			if int(id)%tables != i {
				t.Fatalf("id %d landed in %s", id, table)
			}
		}
		total += len(ids)
	}
	if total != n {
		t.Fatalf("%d distinct rows landed, want %d", total, n)
	}
}

func batchesOf(recs []*connector.Record, size int) [][]*connector.Record {
	var out [][]*connector.Record
	for len(recs) > 0 {
		k := min(size, len(recs))
		out = append(out, recs[:k])
		recs = recs[k:]
	}
	return out
}

func TestConnectionsStayBoundedWhateverTheNumberOfTables(t *testing.T) {
	const n, tables = 6000, 500
	e, addrs := startEmulator(t, bqemu.Faults{Latency: 5 * time.Millisecond})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.MaxConnections, cfg.MaxInFlightAppends = 2, 8
	s := newSink(t, cfg)
	writeConcurrently(t, s, batchesOf(spread(t, 0, n, tables), 1000), 3)
	checkExactlyOnce(t, e, n, tables)
	st := e.Stats()
	t.Logf("%d tables: peak TCP connections %d, peak AppendRows streams %d, %d appends", tables, st.PeakConnections, st.PeakStreams, st.Appends)
	if st.PeakConnections > 2 || st.PeakStreams > 2 {
		t.Fatalf("peak TCP connections %d, AppendRows streams %d: want both <= max_connections 2", st.PeakConnections, st.PeakStreams)
	}
	if w := s.Stats().Writers; w != tables {
		t.Fatalf("%d writers open, want one per table (%d)", w, tables)
	}
}

func TestInjectedQuotaAndUnavailableFaultsLoseNothing(t *testing.T) {
	const n, tables = 8000, 40
	e, addrs := startEmulator(t, bqemu.Faults{Code: codes.ResourceExhausted, Rate: 0.05})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	s := newSink(t, cfg)
	batches := batchesOf(spread(t, 0, n, tables), 200)
	for i, b := range batches {
		switch i % 10 {
		case 3: // a burst of UNAVAILABLE that cuts the stream, as a server restart does
			e.SetFaults(bqemu.Faults{Code: codes.Unavailable, Next: 3, Terminate: true})
		case 5:
			e.SetFaults(bqemu.Faults{Code: codes.ResourceExhausted, Rate: 0.05})
		}
		if bad := write(t, s, b); len(bad) > 0 {
			t.Fatalf("refused: %v", bad[0])
		}
	}
	checkExactlyOnce(t, e, n, tables)
	est, st := e.Stats(), s.Stats()
	t.Logf("faults injected %d, sink retries %d, possible duplicates %d", est.FaultsInjected, st.Retries, st.PossibleDuplicates)
	if est.FaultsInjected < 10 || st.Retries < est.FaultsInjected/2 {
		t.Fatalf("faults injected %d, retries %d: the test did not exercise retries", est.FaultsInjected, st.Retries)
	}
}

func TestConnectionQuotaAboveMaxConnectionsIsNeverHit(t *testing.T) {
	const n, tables = 3000, 300
	e, addrs := startEmulator(t, bqemu.Faults{MaxConnections: 10, Latency: 5 * time.Millisecond})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.MaxConnections, cfg.MaxInFlightAppends = 4, 4
	s := newSink(t, cfg)
	writeConcurrently(t, s, batchesOf(spread(t, 0, n, tables), 500), 3)
	checkExactlyOnce(t, e, n, tables)
	if st := e.Stats(); st.RejectedStreams != 0 || st.PeakStreams > 4 {
		t.Fatalf("emulator: %d streams refused, peak %d; want none refused and peak <= 4", st.RejectedStreams, st.PeakStreams)
	}
	if l := s.Stats().ConnectionLimit; l != 4 {
		t.Fatalf("connection limit %d, want max_connections 4 untouched", l)
	}
}

func TestMaxConnectionsAboveQuotaBacksOffAndLosesNothing(t *testing.T) {
	const n, tables = 3000, 300
	e, addrs := startEmulator(t, bqemu.Faults{MaxConnections: 2, Latency: 20 * time.Millisecond})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	// A small in-flight bound makes the client load its streams, and grow
	// the pool beyond the quota, quickly.
	cfg.MaxConnections, cfg.MaxInFlightAppends = 8, 4
	s := newSink(t, cfg)
	writeConcurrently(t, s, batchesOf(spread(t, 0, n, tables), 600), 4)
	checkExactlyOnce(t, e, n, tables)
	est, st := e.Stats(), s.Stats()
	t.Logf("quota 2, max_connections 8: %d streams refused, limit now %d, retries %d", est.RejectedStreams, st.ConnectionLimit, st.Retries)
	if est.RejectedStreams == 0 {
		t.Fatalf("no stream was refused: the test did not go beyond the quota")
	}
	if st.ConnectionLimit >= 8 {
		t.Fatalf("connection limit still %d after quota refusals: want it lowered", st.ConnectionLimit)
	}
}

// Once the quota is free again (another process went away), the lowered
// limit climbs back to max_connections, doubling each quotaRecover.
func TestLoweredConnectionLimitRecovers(t *testing.T) {
	defer func(d time.Duration) { quotaRecover = d }(quotaRecover)
	quotaRecover = time.Hour // while the quota holds: lowered, and it stays so
	const tables = 200
	e, addrs := startEmulator(t, bqemu.Faults{MaxConnections: 2, Latency: 20 * time.Millisecond})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.MaxConnections, cfg.MaxInFlightAppends = 8, 4
	s := newSink(t, cfg)
	writeConcurrently(t, s, batchesOf(spread(t, 0, 2000, tables), 500), 4)
	lowered := s.Stats().ConnectionLimit
	if lowered >= 8 {
		t.Fatalf("connection limit %d: the quota did not lower it", lowered)
	}
	if err := e.SetFaults(bqemu.Faults{}); err != nil {
		t.Fatal(err)
	}
	quotaRecover = 200 * time.Millisecond // no append is in flight: no race
	next := 2000
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().ConnectionLimit < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("connection limit still %d (lowered to %d) with the quota gone", s.Stats().ConnectionLimit, lowered)
		}
		time.Sleep(quotaRecover / 2)
		writeConcurrently(t, s, batchesOf(spread(t, next, 100, tables), 50), 2)
		next += 100
	}
	checkExactlyOnce(t, e, next, tables)
}

func TestIdleWritersAreClosed(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	// Long enough that a loaded CI machine (-race, every core busy)
	// writes all 10 tables before the first writer is reaped; short
	// enough to wait for.
	cfg.IdleTimeout = 5 * time.Second
	s := newSink(t, cfg)
	if bad := write(t, s, spread(t, 0, 100, 10)); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	if w := s.Stats().Writers; w != 10 {
		t.Fatalf("%d writers after writing to 10 tables", w)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Writers > 0 || e.Stats().Streams > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after idle_timeout: %d writers and %d AppendRows streams still open", s.Stats().Writers, e.Stats().Streams)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A table used again gets a writer again.
	if bad := write(t, s, spread(t, 100, 10, 10)); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	checkExactlyOnce(t, e, 110, 10)
}

func TestSinksShareOneClientPerProcess(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.MaxConnections = 2
	a, b := newSink(t, cfg), newSink(t, cfg)
	if a.client != b.client {
		t.Fatal("two sinks with the same project and endpoint have separate clients")
	}
	var wg sync.WaitGroup
	for i, s := range []*Sink{a, b} {
		wg.Go(func() {
			if bad := write(t, s, spread(t, i*1000, 1000, 100)); len(bad) > 0 {
				t.Errorf("refused: %v", bad[0])
			}
		})
	}
	wg.Wait()
	checkExactlyOnce(t, e, 2000, 100)
	if st := e.Stats(); st.PeakConnections > 2 || st.PeakStreams > 2 {
		t.Fatalf("two pipelines: peak TCP %d, streams %d; want <= 2 for the process", st.PeakConnections, st.PeakStreams)
	}
	a.Close(context.Background())
	if bad := write(t, b, spread(t, 2000, 100, 100)); len(bad) > 0 {
		t.Fatalf("the other sink broke when one closed: %v", bad[0])
	}
}
