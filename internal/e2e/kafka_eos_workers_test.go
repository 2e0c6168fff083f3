package e2e

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaExactlyOnceWorkersUnderKills: a 1-partition topic moved into
// Kafka by 8 workers by key with delivery: exactly_once, the process
// SIGKILLed mid-run (inside transactions, most likely) and restarted in
// the same group. Each consumer batch is one transaction that all the
// workers write into and that commits the offsets after the whole batch,
// so read_committed readers of the output see every record exactly once
// and each key's records in source order. 20,000 records and 3 kills (5
// kills of 100,000 with SLUICE_LONG=1).
func TestKafkaExactlyOnceWorkersUnderKills(t *testing.T) {
	n, kills := 20000, 3
	if longRun() {
		n, kills = 100000, 5
	}
	kills = killCount(kills)
	c := startBroker(t)
	// Committing offsets in a transaction takes 40 ms, as on a cluster
	// that replicates them: kills land inside transactions.
	c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.SleepControl(func() { time.Sleep(40 * time.Millisecond) })
		return nil, nil, false
	})
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "eosw.in", 1)
	createTopic(t, brokers, "eosw.out", 4)
	adm := adminClient(t, brokers)
	produceAll(t, brokers, nil, 0, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "eosw.in", Key: fmt.Appendf(nil, "k%d", i%500), Value: []byte(strconv.Itoa(i))}
	})
	yaml := fmt.Sprintf(`
name: eosw
delivery: exactly_once
parallelism: {workers: 8, by: key}
source:
  kafka: {brokers: [%[1]s], topics: [eosw.in], group: eosw, properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
batch: {max_records: 200, linger: 20ms}
sink:
  kafka: {brokers: [%[1]s], topic: eosw.out, transaction_timeout: 3s}
`, brokers[0])
	start := func() *exec.Cmd { return startCrashChild(t, yaml) }
	progress := func() int64 { return committed(t, adm, "eosw", "eosw.in")[0] }
	for k := 0; k < kills; k++ {
		cmd := start()
		target := int64(n) * int64(k+1) / int64(kills+2)
		eventually(t, 120*time.Second, fmt.Sprintf("offset %d committed before kill %d", target, k+1), func() bool { return progress() >= target })
		// A moment later: inside the next transaction, most likely.
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("kill %d: %d of %d input records committed", k+1, progress(), n)
	}
	cmd := start()
	waitCommittedToEnd(t, adm, "eosw", "eosw.in", 180*time.Second)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	seen := make([]int, n)
	last := map[string]int{}
	total, outOfOrder := 0, ""
	consumeEach(t, brokers, "eosw.out", n, 60*time.Second, func(r *kgo.Record) {
		total++
		v, err := strconv.Atoi(string(r.Value))
		if err != nil || v < 0 || v >= n {
			t.Fatalf("unexpected value %q in eosw.out", r.Value)
		}
		seen[v]++
		if prev, ok := last[string(r.Key)]; ok && v <= prev && outOfOrder == "" {
			outOfOrder = fmt.Sprintf("key %s: record %d after %d", r.Key, v, prev)
		}
		last[string(r.Key)] = v
	}, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %d is %d times in eosw.out (read_committed), want once; %d records in all", v, c, total)
		}
	}
	if total != n {
		t.Fatalf("eosw.out holds %d committed records for %d input records", total, n)
	}
	if outOfOrder != "" {
		t.Fatalf("%s in eosw.out: out of order", outOfOrder)
	}
	t.Logf("%d records, 8 workers by key, %d SIGKILLs: every record once in eosw.out (read_committed), each key in order", n, kills)
}
