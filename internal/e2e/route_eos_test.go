package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// One source routed to a PostgreSQL table and a Kafka topic with
// delivery: exactly_once, `sluice run` SIGKILLed while records flow: each
// sink keeps its own position (sluice_offsets rows, the group's offsets
// committed in the Kafka transactions), the source resumes from the lower
// one and each sink skips what it holds, so every record is in exactly one
// of the two sinks, once. 2 kills of 30,000 records (5 of 200,000 with
// SLUICE_LONG=1).
func TestRouteExactlyOnceToPostgresAndKafkaUnderKills(t *testing.T) {
	n, kills := 30000, 2
	if longRun() {
		n, kills = 200000, 5
	}
	kills = killCount(kills)
	bin := buildSluice(t)
	d := openSQL(t, "postgres")
	pipe := sqlName("rteos")
	table := pipe + "_orders"
	d.cleanupSQL(t, pipe+".orders", table)
	c := startBroker(t)
	// Offsets committed in a transaction take a while, as on a cluster
	// that replicates them, so kills land inside transactions.
	c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { time.Sleep(20 * time.Millisecond) })
		return nil, nil, false
	})
	brokers := c.ListenAddrs()
	in, out := pipe+".in", pipe+".rest"
	createTopic(t, brokers, in, 4)
	createTopic(t, brokers, out, 4)
	file := filepath.Join(t.TempDir(), "route.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: %[1]s
delivery: exactly_once
source:
  kafka: {brokers: [%[2]s], topics: [%[3]s], group: %[1]s, consumers: 2, properties: {max.poll.records: 1000, session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
format: {value: json}
batch: {max_records: 1000}
sinks:
  orders: {postgres: {dsn: %[4]q, table: %[5]s, create_table: true}}
  rest: {kafka: {brokers: [%[2]s], topic: %[6]s, transaction_timeout: 3s}}
route:
  - when: 'value.id %% 3 == 0'
    sink: orders
  - sink: rest
`, pipe, brokers[0], in, d.dsn, table, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := func() int64 {
		n, _ := d.tryCount("SELECT count(*) FROM " + table) // created by the first write
		return n
	}
	slice := n / (kills + 1)
	for k := 0; k < kills; k++ {
		produceN(t, brokers, in, k*slice, slice)
		cmd := startSluice(t, bin, file)
		before := rows()
		eventually(t, 120*time.Second, fmt.Sprintf("rows written before kill %d", k+1), func() bool { return rows() > before })
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d rows in %s", k+1, rows(), table)
	}
	produceN(t, brokers, in, kills*slice, n-kills*slice)
	cmd := startSluice(t, bin, file)
	wantRows := int64((n + 2) / 3)
	eventually(t, 180*time.Second, "every routed record in the table", func() bool { return rows() >= wantRows })
	consumeCommitted(t, brokers, out, n-int(wantRows), 180*time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	// Read again, now that nothing writes: every record, then a second
	// more for a duplicate that may follow the last one.
	seen := consumeCommitted(t, brokers, out, n-int(wantRows), 180*time.Second)
	if got := d.count(t, "SELECT count(*) FROM "+table); got != wantRows {
		t.Errorf("%s holds %d rows, want %d", table, got, wantRows)
	}
	if got := d.count(t, "SELECT count(DISTINCT id) FROM "+table); got != wantRows {
		t.Errorf("%s holds %d distinct ids, want %d", table, got, wantRows)
	}
	if got := d.count(t, "SELECT count(*) FROM "+table+" WHERE id % 3 <> 0"); got != 0 {
		t.Errorf("%s holds %d records routed to the topic", table, got)
	}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)
		switch {
		case i%3 == 0 && seen[v] != 0:
			t.Fatalf("record %d, routed to the table, is in %s %d times", i, out, seen[v])
		case i%3 != 0 && seen[v] != 1:
			t.Fatalf("record %d is in %s %d times, want once (read_committed)", i, out, seen[v])
		}
	}
	t.Logf("%d records, %d SIGKILLs: %d rows in the table, %d in the topic, each once", n, kills, wantRows, n-int(wantRows))
}
