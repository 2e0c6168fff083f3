package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/faultproxy"
)

// mysqlCommit is the COM_QUERY packet go-sql-driver sends to commit:
// length 7, sequence 0, command 3, "COMMIT".
var mysqlCommit = []byte("\x07\x00\x00\x00\x03COMMIT")

// TestSQLMySQLConnectionCutOrCommitAnswerLostLosesNothing: MariaDB's
// connection is cut in the middle of an INSERT into staging, or a COMMIT
// reaches the server but its answer is lost (and the connection reset),
// three times each. Every record reaches the final table: exactly once
// with exactly_once; with at_least_once a lost commit answer may bring a
// batch twice, never lose one.
func TestSQLMySQLConnectionCutOrCommitAnswerLostLosesNothing(t *testing.T) {
	for _, delivery := range []string{config.AtLeastOnce, config.ExactlyOnce} {
		for _, fault := range []string{"cut_mid_insert", "commit_answer_lost"} {
			t.Run(delivery+"/"+fault, func(t *testing.T) {
				const n, faults, batch = 6000, 3, 500
				f := startSQLFaultPipeline(t, sqlFaultOptions{kind: "mysql", delivery: delivery, mode: "pause", batch: batch})
				for i := 0; i < faults; i++ {
					if fault == "cut_mid_insert" {
						f.proxy.CutAfter(faultproxy.Contains([]byte("INSERT INTO `"+f.m.stg+"`")), 100)
					} else {
						f.proxy.DropAnswersAfter(faultproxy.Contains(mysqlCommit), 0, 0)
					}
					produceN(t, f.brokers, f.topic, i*n/faults, n/faults)
					eventually(t, 30*time.Second, fmt.Sprintf("fault %d", i+1), func() bool {
						st := f.proxy.Stats()
						return st.Cuts+st.Drops == int64(i+1) && (fault == "cut_mid_insert" || st.DroppedBytes > 0)
					})
					if fault == "commit_answer_lost" {
						f.proxy.ResetAll() // the client waits for the answer until the connection breaks
					}
				}
				retries, dups := f.finish(t, delivery, n)
				if dups > faults*batch {
					t.Fatalf("%d duplicates; at most the %d faulted batches of %d may come twice", dups, faults, batch)
				}
				t.Logf("%s, %s x%d: %d records in, %d distinct out, %d duplicates, %d write retries", delivery, fault, faults, n, n, dups, retries)
			})
		}
	}
}

// TestSQLMySQLStrandedConnectionsRecoverWithoutHelp: mid-run, every
// connection to MariaDB goes half-open for good (nothing answers, no RST)
// while new connections work. The driver's read deadline
// (statement_timeout) ends the waits, the connections are dropped and the
// writes and merges retried on fresh ones; every record arrives once.
func TestSQLMySQLStrandedConnectionsRecoverWithoutHelp(t *testing.T) {
	const n = 6000
	f := startSQLFaultPipeline(t, sqlFaultOptions{kind: "mysql", delivery: config.ExactlyOnce, mode: "pause", batch: 500,
		statement: 2 * time.Second, merge: 2 * time.Second})
	produceN(t, f.brokers, f.topic, 0, n/2)
	eventually(t, 30*time.Second, "the first rows merged", func() bool { return f.d.count(t, "SELECT count(*) FROM "+f.m.fin) > 0 })
	produceN(t, f.brokers, f.topic, n/2, n/2)
	before := f.proxy.Stats().Accepted
	f.proxy.Strand()
	eventually(t, 30*time.Second, "a new connection after the strand", func() bool { return f.proxy.Stats().Accepted > before })
	retries, _ := f.finish(t, config.ExactlyOnce, n)
	t.Logf("%d connections stranded: %d records once, %d write retries", f.proxy.Stats().Stranded, n, retries)
}
