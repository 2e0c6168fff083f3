package e2e

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestSQLPostgresAtLeastOnceUnderKills: with delivery: at_least_once into
// a plain PostgreSQL table, SIGKILLs at random points lose no record; what
// a kill re-delivers (read and written, not yet committed to the group) is
// counted and bounded by what was in flight plus the commit interval.
func TestSQLPostgresAtLeastOnceUnderKills(t *testing.T) {
	n, kills := 30000, killCount(4)
	if longRun() {
		n = 200000
	}
	d := openSQL(t, "postgres")
	pipe, tbl := sqlName("alokill"), sqlName("alokill_rows")
	d.exec(t, fmt.Sprintf("CREATE TABLE %s (id bigint NOT NULL, name text, price numeric)", tbl))
	t.Cleanup(func() { d.exec(t, "DROP TABLE IF EXISTS "+tbl) })
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "alokill", 6)

	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += n / 40 {
			produceN(t, brokers, "alokill", i, n/40)
			time.Sleep(150 * time.Millisecond) // pacing the input, not a synchronisation
		}
	}()
	const inFlight, batch = 5000, 1000
	yaml := fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [alokill], group: %s, consumers: 2, properties: {session.timeout.ms: 6000}}
format: {value: json}
batch: {max_records: %d}
limits: {max_in_flight_records: %d}
sink:
  postgres: {dsn: %q, table: %s}
`, pipe, brokers[0], pipe, batch, inFlight, d.dsn, tbl)
	start := func() *exec.Cmd { return startCrashChild(t, yaml) }
	rows := func() int64 { n, _ := d.tryCount("SELECT count(*) FROM " + tbl); return n }
	for k := 0; k < kills; k++ {
		cmd := start()
		target := int64(n) * int64(k+1) / int64(kills+1)
		eventually(t, 120*time.Second, fmt.Sprintf("%d rows before kill %d", target, k+1), func() bool { return rows() >= target })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	<-produced
	cmd := start()
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	eventually(t, 180*time.Second, "every input record in the table", func() bool {
		return d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s", tbl)) == int64(n)
	})
	if lost := int64(n) - d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id < %d", tbl, n)); lost != 0 {
		t.Fatalf("%d records lost", lost)
	}
	dups := d.count(t, "SELECT count(*) FROM "+tbl) - int64(n)
	t.Logf("%d records, %d SIGKILLs at least once into PostgreSQL: 0 lost, %d duplicates (%d per kill)", n, kills, dups, dups/int64(kills))
}
