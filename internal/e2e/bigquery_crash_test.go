package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// TestBigQuerySIGKILLMidStreamLosesNoRow: `sluice run` appending to
// BigQuery is killed with SIGKILL three times mid-stream and restarted;
// every row ends up in BigQuery. Offsets commit only after BigQuery
// confirmed the appends, so what a kill loses is re-read and appended
// again: duplicates, bounded by what was in flight, are counted.
func TestBigQuerySIGKILLMidStreamLosesNoRow(t *testing.T) {
	n := 30000
	if longRun() {
		n = 200000
	}
	const tables, inFlight, kills = 50, 10000, 3
	bin := buildSluice(t)
	e, addrs := startBQEmulator(t, bqemu.Faults{})
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "crash.events", 6)
	bqProduceJSON(t, brokers, "crash.events", 0, n, bqEventJSON(tables))

	file := filepath.Join(t.TempDir(), "p.yaml")
	yaml := fmt.Sprintf(`
name: crash-bq
source:
  kafka: {brokers: [%s], topics: [crash.events], group: crash-bq, consumers: 2,
          properties: {auto.commit.interval.ms: 100, session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
format: {value: json}
batch: {max_records: 2000}
limits: {max_in_flight_records: %d}
`, brokers[0], inFlight) + bqSinkYAML(addrs, "events-{{.Value.kind}}", 4, bqCreate)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := runKilled(t, bin, file, kills, int64(n), "rows in BigQuery", func() int64 { return e.Stats().RowsAppended })
	bqWaitCommitted(t, brokers, "crash-bq", "crash.events", 3*time.Minute)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v", err)
	}

	ids, _ := bqRowsByID(t, e)
	dups := bqCheckOnce(t, ids, n)
	t.Logf("%d records, %d SIGKILLs: every row present, %d duplicate rows (%.2f%%); in-flight bound %d per kill",
		n, kills, dups, 100*float64(dups)/float64(n), inFlight)
	if dups > kills*(inFlight+2*2000) {
		t.Fatalf("%d duplicates exceed what was in flight at %d kills", dups, kills)
	}
}
