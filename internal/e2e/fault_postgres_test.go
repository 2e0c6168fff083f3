package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/faultproxy"
)

// pgCopySignature opens the data of a binary COPY: the proxy arms its
// cut on it, so the cut lands inside the COPY.
var pgCopySignature = []byte("PGCOPY\n\377\r\n\000")

// pgCommit is the simple-protocol query pgx sends to commit ('Q', length
// 11, "commit"); "begin isolation level read committed" does not match.
var pgCommit = []byte("Q\x00\x00\x00\x0bcommit\x00")

// startFaultProxy runs a fault proxy to target for the test.
func startFaultProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// sqlFaultPipeline runs a Kafka -> PostgreSQL or MariaDB staging
// pipeline whose database connections go through a fault proxy.
type sqlFaultPipeline struct {
	d       *sqlDB
	m       pgMerge
	proxy   *faultproxy.Proxy
	brokers []string
	topic   string
	b       *assembly.Built
	stop    func() error
}

func startPgFaultPipeline(t *testing.T, delivery, mode string, mergeSleep float64, batch int) *sqlFaultPipeline {
	t.Helper()
	return startSQLFaultPipeline(t, sqlFaultOptions{kind: "postgres", delivery: delivery, mode: mode, mergeSleep: mergeSleep, batch: batch})
}

// sqlFaultOptions shape a sqlFaultPipeline.
type sqlFaultOptions struct {
	kind, delivery, mode string
	mergeSleep           float64 // seconds a merge lasts (postgres)
	batch                int
	statement, merge     time.Duration // statement_timeout, merge.timeout; 0: the default
}

func startSQLFaultPipeline(t *testing.T, o sqlFaultOptions) *sqlFaultPipeline {
	t.Helper()
	f := &sqlFaultPipeline{d: openSQL(t, o.kind), topic: "faults"}
	pipe := sqlName("fault")
	server := "127.0.0.1:5432"
	if o.kind == "mysql" {
		f.m, server = setupMySQLMerge(t, f.d, pipe), "127.0.0.1:3306"
	} else {
		f.m = setupPgMerge(t, f.d, pipe, o.mergeSleep)
	}
	f.proxy = startFaultProxy(t, server)
	dsn := strings.Replace(f.d.dsn, server, f.proxy.Addr(), 1)
	f.brokers = startBroker(t).ListenAddrs()
	createTopic(t, f.brokers, f.topic, 3)
	var statement, merge string
	if o.statement > 0 {
		statement = fmt.Sprintf("\n    statement_timeout: %s", o.statement)
	}
	if o.merge > 0 {
		merge = fmt.Sprintf(", timeout: %s", o.merge)
	}
	f.b, f.stop = runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [%s], group: %s, consumers: 2}
format: {value: json}
delivery: %s
batch: {max_records: %d}
sink:
  %s:
    dsn: %q
    staging_table: %s%s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1500, idle: 300ms, mode: %s%s}
`, pipe, f.brokers[0], f.topic, pipe, o.delivery, o.batch, o.kind, dsn, f.m.stg, statement, f.m.proc, o.mode, merge))
	return f
}

// finish waits for n distinct records in the final table with staging
// empty, stops the pipeline and checks the outcome the delivery mode
// promises: every record exactly once for exactly_once, every record at
// least once for at_least_once. It returns the duplicates.
func (f *sqlFaultPipeline) finish(t *testing.T, delivery string, n int) (retries, duplicates int64) {
	t.Helper()
	eventually(t, 45*time.Second, "every record merged into the final table", func() bool {
		return f.d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s", f.m.fin)) >= int64(n) &&
			f.d.count(t, "SELECT count(*) FROM "+f.m.stg) == 0
	})
	retries = f.b.Pipeline.Status().Retries
	if err := f.stop(); err != nil {
		t.Fatalf("the pipeline stopped with %v", err)
	}
	if delivery == config.ExactlyOnce {
		checkSQLFinal(t, f.d, f.m.fin, f.m.mlog, n)
		return retries, 0
	}
	rows := f.d.count(t, "SELECT count(*) FROM "+f.m.fin)
	if got := f.d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d", f.m.fin, n)); got != int64(n) {
		t.Fatalf("distinct ids in the final table = %d, want %d (records lost)", got, n)
	}
	return retries, rows - int64(n)
}

// TestSQLPostgresConnectionCutMidCopyLosesNothing: the database
// connection is reset in the middle of a COPY into staging, three times.
// The transaction is rolled back, the batch is written again, and every
// record reaches the final table: exactly once with exactly_once, at least
// once otherwise.
func TestSQLPostgresConnectionCutMidCopyLosesNothing(t *testing.T) {
	for _, delivery := range []string{config.AtLeastOnce, config.ExactlyOnce} {
		t.Run(delivery, func(t *testing.T) {
			const n, cuts = 6000, 3
			f := startPgFaultPipeline(t, delivery, "continuous", 0, 500)
			for i := 0; i < cuts; i++ {
				// 100 bytes into the COPY's data: a few rows sent, most not.
				f.proxy.CutAfter(faultproxy.Contains(pgCopySignature), 100)
				produceN(t, f.brokers, f.topic, i*n/cuts, n/cuts)
				eventually(t, 30*time.Second, fmt.Sprintf("cut %d to land in a COPY", i+1), func() bool { return f.proxy.Stats().Cuts == int64(i+1) })
			}
			retries, dups := f.finish(t, delivery, n)
			if retries == 0 {
				t.Fatal("no write was retried: the cuts did not hit a write")
			}
			t.Logf("%s: %d records, %d connections cut mid-COPY, %d write retries, %d duplicates, 0 lost", delivery, n, cuts, retries, dups)
		})
	}
}

// TestSQLPostgresCommitAnswerLostLosesNothing: the COMMIT of a staging
// write reaches the database, which commits, but its answer is lost and
// the connection then reset: the sink cannot know the batch is durable and
// writes it again. exactly_once finds its stored offsets and writes
// nothing twice; at_least_once may duplicate the batch, never lose it.
func TestSQLPostgresCommitAnswerLostLosesNothing(t *testing.T) {
	for _, delivery := range []string{config.AtLeastOnce, config.ExactlyOnce} {
		t.Run(delivery, func(t *testing.T) {
			const n, faults = 6000, 3
			// One writer, pause mode: while records flow, the commits on
			// the wire are staging writes.
			f := startPgFaultPipeline(t, delivery, "pause", 0, 500)
			for i := 0; i < faults; i++ {
				f.proxy.DropAnswersAfter(faultproxy.Contains(pgCommit), 0, 0)
				produceN(t, f.brokers, f.topic, i*n/faults, n/faults)
				eventually(t, 30*time.Second, fmt.Sprintf("the answer to commit %d dropped", i+1), func() bool {
					st := f.proxy.Stats()
					return st.Drops == int64(i+1) && st.DroppedBytes > 0
				})
				// The client waits for an answer that will not come until
				// the connection breaks.
				f.proxy.ResetAll()
			}
			// A lost answer may be a merge's commit: retried as a merge,
			// not as a write.
			retries, dups := f.finish(t, delivery, n)
			if dups > faults*500 {
				t.Fatalf("%d duplicates; at most the %d lost batches of 500 may come twice", dups, faults)
			}
			t.Logf("%s: %d records, %d commit answers lost, %d retries, %d duplicates, 0 lost", delivery, n, faults, retries, dups)
		})
	}
}

// TestSQLPostgresConnectionCutDuringMergeRecovers: the merge session's
// connection is reset while the merge procedure runs, twice. The merge's
// transaction is rolled back and the merge runs again; the final table
// holds every record once.
func TestSQLPostgresConnectionCutDuringMergeRecovers(t *testing.T) {
	const n, cuts = 6000, 2
	f := startPgFaultPipeline(t, config.ExactlyOnce, "pause", 1, 500) // a merge lasts 1 s: the fault lands in it
	merging := func() bool {
		return f.d.count(t, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL %s(%%'", f.m.proc)) > 0
	}
	for i := 0; i < cuts; i++ {
		produceN(t, f.brokers, f.topic, i*n/cuts, n/cuts)
		eventually(t, 30*time.Second, "a merge running", merging)
		f.proxy.ResetAll()
	}
	f.finish(t, config.ExactlyOnce, n)
	failed := 0
	for _, mi := range sqlMerges(f.b) {
		if mi.Error != "" {
			failed++
		}
	}
	if failed < cuts {
		t.Fatalf("%d failed merge attempts in the history, want at least %d: %+v", failed, cuts, sqlMerges(f.b))
	}
	t.Logf("%d records, %d connections cut during a merge, %d merge attempts failed and were retried; final table exact", n, cuts, failed)
}

// TestSQLPostgresMergeCommitAnswerLostMergesOnce: the merge commits but
// its answer is lost and the connection reset. The orchestrator cannot
// know the merge happened; its retry finds the batch merged in the
// bookkeeping and does not merge it again.
func TestSQLPostgresMergeCommitAnswerLostMergesOnce(t *testing.T) {
	const n = 4000
	f := startPgFaultPipeline(t, config.ExactlyOnce, "pause", 1, 500) // a merge lasts 1 s: the fault lands in it
	merging := func() bool {
		return f.d.count(t, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL %s(%%'", f.m.proc)) > 0
	}
	produceN(t, f.brokers, f.topic, 0, n)
	eventually(t, 30*time.Second, "a merge running", merging)
	// Consumers are paused for the merge: the next commit on the wire is
	// the merge's own.
	f.proxy.DropAnswersAfter(faultproxy.Contains(pgCommit), 0, 0)
	eventually(t, 30*time.Second, "the answer to the merge's commit dropped", func() bool {
		st := f.proxy.Stats()
		return st.Drops == 1 && st.DroppedBytes > 0
	})
	f.proxy.ResetAll()
	f.finish(t, config.ExactlyOnce, n)
	if twice := f.d.count(t, fmt.Sprintf("SELECT count(*) FROM (SELECT hwm FROM %s GROUP BY hwm HAVING count(*) > 1) x", f.m.mlog)); twice != 0 {
		t.Fatalf("%d staging batches merged twice", twice)
	}
	lost := false
	for _, mi := range sqlMerges(f.b) {
		lost = lost || strings.Contains(mi.Error, "committing the merge")
	}
	if !lost {
		t.Fatalf("no merge attempt failed on its commit: %+v", sqlMerges(f.b))
	}
	t.Logf("%d records, a merge commit whose answer was lost: merged once (%d merges in the history)", n, len(sqlMerges(f.b)))
}

// TestSQLPostgresBlackHoledRecoversWithoutHelp: the database stops
// answering (a network partition: connections stay up, nothing comes
// back) for a few seconds (30 s with SLUICE_LONG=1) while records keep
// arriving. Writes and merges wait; when the network heals the pipeline
// goes on by itself and the final table holds every record once.
func TestSQLPostgresBlackHoledRecoversWithoutHelp(t *testing.T) {
	outage := 4 * time.Second
	if longRun() {
		outage = 30 * time.Second
	}
	const n = 6000
	f := startPgFaultPipeline(t, config.ExactlyOnce, "continuous", 0, 500)
	produceN(t, f.brokers, f.topic, 0, n/2)
	eventually(t, 30*time.Second, "the first rows merged", func() bool { return f.d.count(t, "SELECT count(*) FROM "+f.m.fin) > 0 })
	if err := f.proxy.BlackHole(); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	produceN(t, f.brokers, f.topic, n/2, n/2)
	time.Sleep(outage - time.Since(downAt)) // the outage itself, not a synchronisation
	during := f.b.Pipeline.Status().RecordsOut
	if err := f.proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	if during > n/2 {
		t.Fatalf("%d records written by the end of the outage, only %d were produced before it: the outage did not hit the pipeline", during, n/2)
	}
	retries, _ := f.finish(t, config.ExactlyOnce, n)
	t.Logf("database black-holed for %v: %d records in, %d out exactly once, %d written during the outage, %d retries", outage, n, n, during, retries)
}

// TestSQLPostgresStrandedConnectionsRecoverWithoutHelp: mid-run, every
// database connection the sink has open goes half-open for good (the
// server forgot them; they stay up on Sluice's side, nothing answers, no
// RST comes) while new connections work. The statements waiting on them
// give up after statement_timeout, their connections are dropped, and
// the writes and merges are retried on fresh ones: the pipeline goes on by
// itself and the final table holds every record, once with exactly_once.
// Without the deadline the pipeline waits forever.
func TestSQLPostgresStrandedConnectionsRecoverWithoutHelp(t *testing.T) {
	for _, delivery := range []string{config.AtLeastOnce, config.ExactlyOnce} {
		t.Run(delivery, func(t *testing.T) {
			const n, strands = 6000, 2
			f := startSQLFaultPipeline(t, sqlFaultOptions{kind: "postgres", delivery: delivery, mode: "continuous", batch: 500,
				statement: 2 * time.Second, merge: 2 * time.Second})
			produceN(t, f.brokers, f.topic, 0, n/3)
			eventually(t, 30*time.Second, "the first rows merged", func() bool { return f.d.count(t, "SELECT count(*) FROM "+f.m.fin) > 0 })
			for i := 1; i <= strands; i++ {
				// Records flowing: the strand lands on writes in flight
				// as well as on pooled connections and the merge session.
				produceN(t, f.brokers, f.topic, i*n/3, n/3)
				before := f.proxy.Stats().Accepted
				f.proxy.Strand()
				eventually(t, 30*time.Second, fmt.Sprintf("a new connection after strand %d", i), func() bool {
					return f.proxy.Stats().Accepted > before
				})
			}
			retries, dups := f.finish(t, delivery, n)
			st := f.proxy.Stats()
			// At least once, a strand after a COMMIT reached the server
			// brings that batch again: at most one per consumer (2) per
			// strand.
			if bound := int64(strands * 2 * 500); dups > bound {
				t.Fatalf("%d duplicates, more than the %d batches in flight at the strands (%d)", dups, strands*2, bound)
			}
			if retries == 0 {
				t.Fatalf("no write was retried: the strands (%d connections) did not hit a write", st.Stranded)
			}
			t.Logf("%s: %d records, %d strands of %d connections in all, %d retries, %d duplicates, 0 lost", delivery, n, strands, st.Stranded, retries, dups)
		})
	}
}

// TestSQLPostgresMergeStrandedRecoversWithoutHelp: the merge session goes
// half-open for good while the merge procedure runs. The merge gives up
// after merge.timeout, is rolled back (the server ended the forgotten
// session) and runs again on a fresh connection; every record is merged
// once.
func TestSQLPostgresMergeStrandedRecoversWithoutHelp(t *testing.T) {
	const n = 4000
	// A merge lasts 1 s, well within its 4 s deadline: the strand lands in it.
	f := startSQLFaultPipeline(t, sqlFaultOptions{kind: "postgres", delivery: config.ExactlyOnce, mode: "pause", mergeSleep: 1, batch: 500,
		statement: 2 * time.Second, merge: 4 * time.Second})
	merging := func() bool {
		return f.d.count(t, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'CALL %s(%%'", f.m.proc)) > 0
	}
	produceN(t, f.brokers, f.topic, 0, n)
	eventually(t, 30*time.Second, "a merge running", merging)
	f.proxy.Strand()
	f.finish(t, config.ExactlyOnce, n)
	timedOut := 0
	for _, mi := range sqlMerges(f.b) {
		if strings.Contains(mi.Error, "merge.timeout") {
			timedOut++
		}
	}
	if timedOut == 0 {
		t.Fatalf("no merge attempt gave up on merge.timeout: %+v", sqlMerges(f.b))
	}
	t.Logf("%d records, the merge session stranded mid-merge: %d attempt(s) timed out, merged once (%d merges in the history)", n, timedOut, len(sqlMerges(f.b)))
}
