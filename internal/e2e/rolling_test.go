package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A rolling deploy (README, Several processes): three `sluice run`
// processes share the group with static membership (--instance-id, one
// per process); mid-run one is SIGKILLed and restarted at once under the
// same id, as a rolling restart does, and a fourth process joins. The
// sink is exactly-once Kafka, so every record fed arrives exactly once:
// nothing lost, nothing duplicated. SLUICE_LONG=1 runs 500,000 records.
func TestRollingDeployWithStaticMembersLosesAndDuplicatesNothing(t *testing.T) {
	spec := failoverSpec{partitions: 12, records: 50000, perSecond: 10000,
		props:  "session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 6000",
		limits: "delivery: exactly_once\nlimits: {max_in_flight_records: 5000}\nbatch: {max_records: 1000}"}
	if longRun() {
		spec.records, spec.perSecond = 500000, 20000
	}
	c := startBroker(t)
	g := newFailoverGroup(t, spec, c.ListenAddrs())
	startAs := func(id string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(g.bin, "run", "--log-level", "warn", "--instance-id", id, g.file)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	g.feed(spec.perSecond)
	startAs("sluice-0")
	p1 := startAs("sluice-1")
	startAs("sluice-2")

	eventually(t, 60*time.Second, "a fifth written", func() bool { return g.written() >= int64(spec.records/5) })
	g.kill(p1)
	startAs("sluice-1") // the same member, restarted: takes its partitions back
	eventually(t, 60*time.Second, "half written", func() bool { return g.written() >= int64(spec.records/2) })
	startAs("sluice-3") // scaling out: the group rebalances
	g.fedAll(120 * time.Second)
	waitCommittedToEnd(t, g.adm, g.group, "fo.in", 90*time.Second)

	seen := consumeAllWith(t, g.brokers, "fo.out", spec.records, 60*time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	lost, dups := 0, 0
	for i := 0; i < spec.records; i++ {
		switch n := seen[foValue(i)]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("%d records, 4 processes, one SIGKILLed and restarted, one added: %d lost, %d duplicated", spec.records, lost, dups)
	if lost > 0 || dups > 0 {
		t.Fatalf("%d records lost and %d duplicated in fo.out (read_committed); exactly-once wants none of either", lost, dups)
	}
}
