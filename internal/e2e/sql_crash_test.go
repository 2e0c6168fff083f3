package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
)

// TestSQLCrashChild is the process TestSQLPostgresExactlyOnceUnderKills
// kills: it runs the pipeline in SLUICE_SQL_CRASH_PIPELINE until killed.
func TestSQLCrashChild(t *testing.T) {
	yaml := os.Getenv("SLUICE_SQL_CRASH_PIPELINE")
	if yaml == "" {
		t.Skip("helper process of TestSQLPostgresExactlyOnceUnderKills")
	}
	b, err := assembly.Build(context.Background(), parsePipeline(t, yaml), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Pipeline.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startCrashChild starts TestSQLCrashChild running yaml, to be killed.
func startCrashChild(t *testing.T, yaml string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SLUICE_SQL_CRASH_PIPELINE="+yaml)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestSQLPostgresExactlyOnceUnderKills: with delivery: exactly_once, a
// process SIGKILLed at random points (while copying, while merging)
// neither loses nor duplicates a row: the final table equals the input and
// the merge log shows every staging row merged once.
func TestSQLPostgresExactlyOnceUnderKills(t *testing.T) {
	n, kills := 20000, 6
	if longRun() {
		n, kills = 200000, 8
	}
	kills = killCount(kills)
	d := openSQL(t, "postgres")
	pipe := sqlName("kill")
	m := setupPgMerge(t, d, pipe, 0.4) // a merge lasts 0.4s: a kill can land in it
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "kill", 6)

	// The input flows while the processes come and go.
	produced := make(chan error, 1)
	go func() {
		defer close(produced)
		for i := 0; i < n; i += n / 40 {
			produceN(t, brokers, "kill", i, n/40)
			time.Sleep(250 * time.Millisecond)
		}
	}()

	start := func(incarnation int) *exec.Cmd {
		// A fresh group per incarnation: the offsets that count are the
		// ones in the database, and the killed member's session need not
		// time out first.
		yaml := fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [kill], group: %s-%d, consumers: 2}
format: {value: json}
delivery: exactly_once
batch: {max_records: 1000}
sink:
  postgres:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 3000, idle: 500ms}
`, pipe, brokers[0], pipe, incarnation, d.dsn, m.stg, m.proc)
		return startCrashChild(t, yaml)
	}
	merging := func() bool {
		return d.count(t, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL %s(%%'", m.proc)) > 0
	}
	killedInMerge := 0
	for k := 0; k < kills; k++ {
		cmd := start(k)
		if k%2 == 1 {
			// Every other kill waits for a merge to be running.
			deadline := time.Now().Add(20 * time.Second)
			for !merging() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		} else {
			// The others land at a random moment outside a merge: rows
			// are being copied into staging then.
			time.Sleep(time.Duration(500+rand.IntN(1000)) * time.Millisecond)
			deadline := time.Now().Add(3 * time.Second)
			for merging() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		inMerge := merging()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if inMerge {
			killedInMerge++
		}
		t.Logf("kill %d (during a merge: %v): %d rows merged so far", k+1, inMerge, d.count(t, "SELECT count(*) FROM "+m.fin))
	}
	if killedInMerge == 0 || killedInMerge == kills {
		t.Fatalf("%d of %d kills landed during a merge; the test wants both kinds", killedInMerge, kills)
	}
	<-produced
	cmd := start(kills)
	eventually(t, 180*time.Second, "the whole input in the final table", func() bool {
		return d.count(t, "SELECT count(*) FROM "+m.fin) >= int64(n) && d.count(t, "SELECT count(*) FROM "+m.stg) == 0
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	checkSQLFinal(t, d, m.fin, m.mlog, n)
	t.Logf("%d records, %d SIGKILLs (%d during a merge): final table equals the input, no row merged twice", n, kills, killedInMerge)
}
