package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumeCommitted reads topic with read_committed (consumeAllAndExtras).
func consumeCommitted(t *testing.T, brokers []string, topic string, want int, deadline time.Duration) map[string]int {
	t.Helper()
	// A second past want: a duplicate may follow the last wanted record,
	// and a check for exactly once must see it.
	return consumeAllAndExtras(t, brokers, topic, want, deadline, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
}

// startSluice starts `sluice run file`, killed at the end of the test if
// it is still running.
func startSluice(t *testing.T, bin, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run", "--log-level", "warn", file)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func eosPipeline(t *testing.T, brokers []string, name, in, out string, consumers int) string {
	return eosPipelineWith(t, brokers, name, in, out, consumers, "exactly_once")
}

// eosPipelineWith writes the pipeline file; small polls make many
// transactions, so a kill lands in one.
func eosPipelineWith(t *testing.T, brokers []string, name, in, out string, consumers int, delivery string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: %[1]s
delivery: %[6]s
source:
  kafka: {brokers: [%[2]s], topics: [%[3]s], group: %[1]s, consumers: %[5]d, properties: {max.poll.records: 2000, session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000, auto.commit.interval.ms: 100}}
sink:
  kafka: {brokers: [%[2]s], topic: %[4]s, transaction_timeout: 3s}
limits: {max_in_flight_records: 20000}
`, name, brokers[0], in, out, consumers, delivery)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// checkExactlyOnce reads out with read_committed and fails unless every
// one of the n input values is there exactly once.
func checkExactlyOnce(t *testing.T, brokers []string, out string, n int, what string) {
	t.Helper()
	seen := consumeCommitted(t, brokers, out, n, 60*time.Second)
	dups, total := 0, 0
	for i := 0; i < n; i++ {
		v := fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)
		switch c := seen[v]; {
		case c == 0:
			t.Fatalf("%s: record %d missing from %s (read_committed)", what, i, out)
		case c > 1:
			dups += c - 1
		}
		total += seen[v]
	}
	if dups > 0 || len(seen) != n {
		t.Fatalf("%s: %d duplicates, %d distinct values for %d records", what, dups, len(seen), n)
	}
	t.Logf("%s: %d records in %s exactly once (read_committed)", what, total, out)
}

// Kafka -> Kafka with delivery: exactly_once: each batch is a transaction
// that also commits the group's offsets, so a reader of the output with
// read_committed sees every input record once, and the group's committed
// offsets reach the end of the input.
func TestKafkaExactlyOnceToKafka(t *testing.T) {
	n := 30000
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "eos.in", 4)
	createTopic(t, brokers, "eos.out", 4)
	produceN(t, brokers, "eos.in", 0, n)
	cmd := startSluice(t, buildSluice(t), eosPipeline(t, brokers, "eos", "eos.in", "eos.out", 2))
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	adm := adminClient(t, brokers)
	waitCommittedToEnd(t, adm, "eos", "eos.in", 120*time.Second)
	checkExactlyOnce(t, brokers, "eos.out", n, "no kills")
}

// The same with the process SIGKILLed at random moments while records
// flow: transactions open at a kill are aborted (by the transaction
// timeout), the group resumes from the last committed transaction, and
// read_committed readers of the output see no record twice and none
// missing. 4 kills of 200,000 records (8 of 1,000,000 with SLUICE_LONG=1).
func TestKafkaExactlyOnceUnderKills(t *testing.T) {
	n, kills := 200000, 4
	if longRun() {
		n, kills = 1000000, 8
	}
	kills = killCount(kills)
	bin := buildSluice(t)
	c := startBroker(t)
	// Committing offsets in a transaction takes 40 ms, as it can on a
	// cluster that replicates them: kills land inside transactions
	// (between their records and their EndTxn; a kill after EndTxn was
	// sent does not stop the commit).
	c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { time.Sleep(40 * time.Millisecond) })
		return nil, nil, false
	})
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "eosk.in", 6)
	createTopic(t, brokers, "eosk.out", 6)
	// Each incarnation gets a slice of new input and is killed while it
	// moves it, after its first committed transaction.
	slice := n / (kills + 1)
	delivery := "exactly_once"
	if d := os.Getenv("SLUICE_EOS_DELIVERY"); d != "" {
		delivery = d // at_least_once shows what the test catches
	}
	file := eosPipelineWith(t, brokers, "eosk", "eosk.in", "eosk.out", 2, delivery)
	adm := adminClient(t, brokers)
	progress := func() int64 {
		var sum int64
		for _, o := range committed(t, adm, "eosk", "eosk.in") {
			sum += o
		}
		return sum
	}
	outEnd := func() int64 {
		var sum int64
		for _, o := range endOffsets(t, adm, "eosk.out") {
			sum += o
		}
		return sum
	}
	start := func() *exec.Cmd { return startSluice(t, bin, file) }
	for k := 0; k < kills; k++ {
		produceN(t, brokers, "eosk.in", k*slice, slice)
		cmd := start()
		// Kill once this incarnation has committed something, after a
		// random extra moment (mid-transaction, most likely).
		before := progress()
		eventually(t, 120*time.Second, fmt.Sprintf("progress before kill %d", k+1), func() bool { return progress() > before })
		// Then at the next sign of a transaction's records being
		// produced, give or take a few milliseconds.
		out := outEnd()
		deadline := time.Now().Add(5 * time.Second)
		for outEnd() == out && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d of %d input records committed", k+1, progress(), n)
	}
	produceN(t, brokers, "eosk.in", kills*slice, n-kills*slice)
	cmd := start()
	waitCommittedToEnd(t, adm, "eosk", "eosk.in", 180*time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	all := 0
	for _, c := range consumeAll(t, brokers, "eosk.out", 1<<30, 3*time.Second) {
		all += c
	}
	t.Logf("%d kills: eosk.out holds %d records with read_uncommitted for %d input records: %d written by transactions the kills aborted", kills, all, n, all-n)
	checkExactlyOnce(t, brokers, "eosk.out", n, fmt.Sprintf("%d SIGKILLs", kills))
}

// A second process joins the group while records flow, then leaves:
// partitions move twice, in the middle of transactions, and the output is
// still exactly once.
func TestKafkaExactlyOnceThroughRebalances(t *testing.T) {
	n := 120000
	bin := buildSluice(t)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "eosr.in", 6)
	createTopic(t, brokers, "eosr.out", 6)
	file := eosPipeline(t, brokers, "eosr", "eosr.in", "eosr.out", 1)
	adm := adminClient(t, brokers)
	start := func() *exec.Cmd { return startSluice(t, bin, file) }
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += n / 60 {
			produceN(t, brokers, "eosr.in", i, n/60)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	a := start()
	eventually(t, 60*time.Second, "the first process committing", func() bool { return len(committed(t, adm, "eosr", "eosr.in")) > 0 })
	b := start() // joins: partitions move from a to b
	time.Sleep(3 * time.Second)
	_ = b.Process.Signal(syscall.SIGTERM) // leaves: they move back
	_ = b.Wait()
	<-produced
	waitCommittedToEnd(t, adm, "eosr", "eosr.in", 120*time.Second)
	_ = a.Process.Signal(syscall.SIGTERM)
	_ = a.Wait()
	checkExactlyOnce(t, brokers, "eosr.out", n, "a process joining and leaving")
}
