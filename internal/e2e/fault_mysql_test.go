package e2e

import (
	"fmt"
	"strings"
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
				d := openSQL(t, "mysql")
				pipe := sqlName("myfault")
				m := setupMySQLMerge(t, d, pipe)
				proxy := startFaultProxy(t, "127.0.0.1:3306")
				dsn := strings.Replace(d.dsn, "127.0.0.1:3306", proxy.Addr(), 1)
				brokers := startBroker(t).ListenAddrs()
				createTopic(t, brokers, "myfault", 3)
				b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [myfault], group: %s, consumers: 2}
format: {value: json}
delivery: %s
batch: {max_records: %d}
sink:
  mysql:
    dsn: %q
    staging_table: %s
    merge: {call: "CALL %s({{.HighWaterMark}})", every_records: 1500, idle: 300ms, mode: pause}
`, pipe, brokers[0], pipe, delivery, batch, dsn, m.stg, m.proc))
				for i := 0; i < faults; i++ {
					if fault == "cut_mid_insert" {
						proxy.CutAfter(faultproxy.Contains([]byte("INSERT INTO `"+m.stg+"`")), 100)
					} else {
						proxy.DropAnswersAfter(faultproxy.Contains(mysqlCommit), 0, 0)
					}
					produceN(t, brokers, "myfault", i*n/faults, n/faults)
					eventually(t, 30*time.Second, fmt.Sprintf("fault %d", i+1), func() bool {
						st := proxy.Stats()
						return st.Cuts+st.Drops == int64(i+1) && (fault == "cut_mid_insert" || st.DroppedBytes > 0)
					})
					if fault == "commit_answer_lost" {
						proxy.ResetAll() // the client waits for the answer until the connection breaks
					}
				}
				eventually(t, 45*time.Second, "every record merged into the final table", func() bool {
					return d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s", m.fin)) >= n &&
						d.count(t, "SELECT count(*) FROM "+m.stg) == 0
				})
				retries := b.Pipeline.Status().Retries
				if err := stop(); err != nil {
					t.Fatalf("the pipeline stopped with %v", err)
				}
				var dups int64
				if delivery == config.ExactlyOnce {
					checkSQLFinal(t, d, m.fin, m.mlog, n)
				} else {
					if got := d.count(t, fmt.Sprintf("SELECT count(DISTINCT id) FROM %s WHERE id >= 0 AND id < %d", m.fin, n)); got != n {
						t.Fatalf("distinct ids in the final table = %d, want %d (records lost)", got, n)
					}
					dups = d.count(t, "SELECT count(*) FROM "+m.fin) - n
					if dups > faults*batch {
						t.Fatalf("%d duplicates; at most the %d faulted batches of %d may come twice", dups, faults, batch)
					}
				}
				t.Logf("%s, %s x%d: %d records in, %d distinct out, %d duplicates, %d write retries", delivery, fault, faults, n, n, dups, retries)
			})
		}
	}
}
