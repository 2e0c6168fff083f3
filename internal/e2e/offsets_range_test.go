package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kadm"
)

// runUntilStopped runs yaml's pipeline and returns Run's error once the
// pipeline stops by itself (or fails the test when it does not).
func runUntilStopped(t *testing.T, yaml string, d time.Duration) (pipeline.Status, error) {
	t.Helper()
	b, err := assembly.Build(context.Background(), parsePipeline(t, yaml), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = b.Close(context.Background())
	})
	select {
	case err := <-done:
		done <- err // for the cleanup
		return b.Pipeline.Status(), err
	case <-time.After(d):
		t.Fatalf("pipeline still running after %v; want it to stop with an error", d)
		return pipeline.Status{}, nil
	}
}

// checkOutOfRangeError asserts that err names the pipeline, the partition,
// both offsets and the fix.
func checkOutOfRangeError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("pipeline stopped without an error")
	}
	for _, w := range append(want, "sluice offsets reset", "--to-earliest") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}

// The scenario: an exactly-once pipeline wrote 300 records, the
// in-memory broker restarted (a recreated topic does the same), and 200 new
// records arrive at offsets 0..199 while the sink holds next offset 300.
// Before the fix the pipeline reported 200 in, 200 out, 0 errors, and the
// table got none of them.
func testStoredOffsetsAheadOfTheLogStopThePipeline(t *testing.T, kind string) {
	d := openSQL(t, kind)
	pipe := sqlName("ahead")
	table := pipe + "_t"
	d.cleanupSQL(t, pipe, table)
	yaml := func(broker string) string {
		return fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [ahead], group: %s}
format: {value: json}
delivery: exactly_once
sink:
  %s: {dsn: %q, table: %s, create_table: true}
`, pipe, broker, pipe, kind, d.dsn, table)
	}

	first := startBroker(t)
	createTopic(t, first.ListenAddrs(), "ahead", 1)
	produceN(t, first.ListenAddrs(), "ahead", 0, 300)
	_, stop := runPipeline(t, yaml(first.ListenAddrs()[0]))
	eventually(t, 60*time.Second, "300 rows", func() bool {
		n, _ := d.tryCount("SELECT count(*) FROM " + table)
		return n == 300
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := startBroker(t)
	createTopic(t, second.ListenAddrs(), "ahead", 1)
	produceN(t, second.ListenAddrs(), "ahead", 1000, 200)
	st, err := runUntilStopped(t, yaml(second.ListenAddrs()[0]), 60*time.Second)
	checkOutOfRangeError(t, err, "pipeline "+pipe, "ahead/0", "sluice_offsets table holds 300", "above the log end 200", "log start 0")
	if st.RecordsOut != 0 {
		t.Errorf("status says %d records out; none was written", st.RecordsOut)
	}
	if n := d.count(t, "SELECT count(*) FROM "+table); n != 300 {
		t.Errorf("table has %d rows, want the first run's 300", n)
	}
}

func TestSQLPostgresStoredOffsetsAheadOfTheLogStopThePipeline(t *testing.T) {
	testStoredOffsetsAheadOfTheLogStopThePipeline(t, "postgres")
}

func TestSQLMySQLStoredOffsetsAheadOfTheLogStopThePipeline(t *testing.T) {
	testStoredOffsetsAheadOfTheLogStopThePipeline(t, "mysql")
}

// A committed group offset below the log start: retention deleted records
// the pipeline never read. Kafka's reset would skip them silently.
func TestCommittedOffsetBelowLogStartStopsThePipeline(t *testing.T) {
	d := openSQL(t, "postgres")
	pipe := sqlName("behind")
	table := pipe + "_t"
	d.cleanupSQL(t, pipe, table)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "behind", 2)
	produceN(t, brokers, "behind", 0, 400)
	adm := adminClient(t, brokers)
	ctx := context.Background()
	ends := endOffsets(t, adm, "behind")
	var commit, deleteTo kadm.Offsets
	commit = kadm.Offsets{}
	deleteTo = kadm.Offsets{}
	commit.AddOffset("behind", 0, 10, -1)
	commit.AddOffset("behind", 1, ends[1], -1) // caught up: fine
	deleteTo.AddOffset("behind", 0, 50, -1)
	if err := adm.CommitAllOffsets(ctx, pipe, commit); err != nil {
		t.Fatal(err)
	}
	resp, err := adm.DeleteRecords(ctx, deleteTo)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = runUntilStopped(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [behind], group: %s}
format: {value: json}
sink:
  postgres: {dsn: %q, table: %s, create_table: true}
`, pipe, brokers[0], pipe, d.dsn, table), 60*time.Second)
	checkOutOfRangeError(t, err, "pipeline "+pipe, "behind/0", "committed offset of group "+pipe+" holds 10", "below the log start 50",
		"--topic behind --partitions 0 ")
	if strings.Contains(err.Error(), "behind/1") {
		t.Errorf("error names partition 1, whose offset is in the log: %v", err)
	}
	if n, _ := d.tryCount("SELECT count(*) FROM " + table); n != 0 {
		t.Errorf("table has %d rows; the pipeline should have stopped before reading", n)
	}
}
