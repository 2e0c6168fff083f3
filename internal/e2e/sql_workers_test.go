package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSQLPostgresWorkersUnderKills: a 1-partition topic written by 8
// workers into PostgreSQL, the process SIGKILLed mid-run and restarted in
// the same group. After every kill, every record below the group's
// committed offset is in the table: the commit never passes a record
// another worker has not made durable. At the end, with delivery:
// exactly_once (by key), the table holds every record exactly once
// (offsets stored per slot skip what was written before a kill); at least
// once (round robin, allow_duplicates), every record at least once.
func TestSQLPostgresWorkersUnderKills(t *testing.T) {
	for _, tc := range []struct{ name, mode string }{
		{"exactly_once by key", "delivery: exactly_once\nparallelism: {workers: 8, by: key}"},
		{"at_least_once round_robin", "allow_duplicates: true\nparallelism: {workers: 8, by: round_robin}"},
	} {
		t.Run(tc.name, func(t *testing.T) { workersUnderKills(t, tc.mode) })
	}
}

func workersUnderKills(t *testing.T, mode string) {
	exactlyOnce := strings.Contains(mode, "exactly_once")
	n, kills := 20000, 2
	if longRun() {
		n, kills = 100000, 5
	}
	kills = killCount(kills)
	d := openSQL(t, "postgres")
	pipe := sqlName("workers")
	table := pipe + "_rows"
	d.cleanupSQL(t, pipe, table)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "wk", 1)
	adm := adminClient(t, brokers)

	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += n / 40 {
			produceAll(t, brokers, nil, i, n/40, func(i int) *kgo.Record {
				return &kgo.Record{Topic: "wk", Key: fmt.Appendf(nil, "k%d", i%500), Value: fmt.Appendf(nil, `{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)}
			})
			time.Sleep(150 * time.Millisecond)
		}
	}()
	yaml := fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [wk], group: %s, properties: {auto.commit.interval.ms: 100, session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
format: {value: json}
%s
batch: {max_records: 100, linger: 20ms}
sink:
  postgres: {dsn: %q, table: %s, create_table: true}
`, pipe, brokers[0], pipe, mode, d.dsn, table)
	start := func() *exec.Cmd { return startCrashChild(t, yaml) }
	rows := func() int64 {
		n, err := d.tryCount("SELECT count(*) FROM " + table)
		if err != nil {
			return 0 // created by the first write
		}
		return n
	}
	for k := 0; k < kills; k++ {
		cmd := start()
		target := int64(n) * int64(k+1) / int64(kills+2)
		eventually(t, 120*time.Second, fmt.Sprintf("%d rows before kill %d", target, k+1), func() bool { return rows() >= target })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		at := committed(t, adm, pipe, "wk")[0]
		below := d.count(t, fmt.Sprintf("SELECT count(DISTINCT _offset) FROM %s WHERE _offset < %d", table, at))
		if below != at {
			t.Fatalf("kill %d: the group committed offset %d, but only %d of the records below it are in the table", k+1, at, below)
		}
		t.Logf("kill %d: %d rows, committed offset %d, every record below it in the table", k+1, rows(), at)
	}
	<-produced
	cmd := start()
	waitCommittedToEnd(t, adm, pipe, "wk", 180*time.Second)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	total := d.count(t, "SELECT count(*) FROM "+table)
	distinct := d.count(t, "SELECT count(DISTINCT _offset) FROM "+table)
	ids := d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d", table, n))
	if distinct != int64(n) || ids != int64(n) {
		t.Fatalf("%d distinct offsets, %d distinct ids; want %d of each: a record was lost", distinct, ids, n)
	}
	if exactlyOnce && total != int64(n) {
		t.Fatalf("%d rows for %d records: duplicates under exactly_once", total, n)
	}
	t.Logf("%d records, 8 workers, %d SIGKILLs: %d rows, every record there (%d duplicates)", n, kills, total, total-int64(n))
}
