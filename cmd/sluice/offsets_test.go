package main

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startKafka(t *testing.T) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, kadm.NewClient(cl)
}

// produceAt writes n records to topic/partition, the i-th with timestamp
// at(i), and waits for the acks.
func produceAt(t *testing.T, brokers []string, topic string, partition int32, n int, at func(i int) time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Timestamp: at(i),
			Value: fmt.Appendf(nil, `{"id":%d,"name":"item %d"}`, i, i)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func createTopicN(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := adm.CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// tableRow returns the fields of the output line for topic/partition.
func tableRow(t *testing.T, out, topic string, partition int) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == topic && f[1] == itoa(partition) {
			return f
		}
	}
	t.Fatalf("no row for %s/%d in:\n%s", topic, partition, out)
	return nil
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOffsetsShowAndResetTheConsumerGroup(t *testing.T) {
	c, adm := startKafka(t)
	brokers := c.ListenAddrs()
	ctx := context.Background()
	createTopicN(t, adm, "films", 2)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for p := int32(0); p < 2; p++ {
		// 10 records at 08:00, 10 at 09:00.
		produceAt(t, brokers, "films", p, 20, func(i int) time.Time { return t0.Add(time.Duration(i/10) * time.Hour) })
	}
	commit := kadm.Offsets{}
	commit.AddOffset("films", 0, 15, -1)
	commit.AddOffset("films", 1, 20, -1)
	if err := adm.CommitAllOffsets(ctx, "films-group", commit); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, fmt.Sprintf(`
name: films
source: {kafka: {brokers: [%s], topics: [films], group: films-group}}
sink: {file: {path: %s}}
`, brokers[0], filepath.Join(t.TempDir(), "out.jsonl")))

	out, _, err := runCLI(t, "offsets", "show", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	// TOPIC PARTITION GROUP LOG-START LOG-END LAG PROBLEM
	if got := tableRow(t, out, "films", 0); strings.Join(got[2:], " ") != "15 0 20 5 -" {
		t.Errorf("show films/0 = %v, want group 15, log 0..20, lag 5\n%s", got, out)
	}
	if got := tableRow(t, out, "films", 1); strings.Join(got[2:], " ") != "20 0 20 0 -" {
		t.Errorf("show films/1 = %v, want group 20, lag 0\n%s", got, out)
	}

	// Dry run: the plan, nothing changed.
	out, _, err = runCLI(t, "offsets", "reset", file, "--to-earliest")
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	// TOPIC PARTITION CURRENT NEW LOG-START LOG-END LAG
	if got := tableRow(t, out, "films", 0); strings.Join(got[2:], " ") != "15 0 0 20 20" || !strings.Contains(out, "dry run") {
		t.Errorf("reset plan films/0 = %v, want 15 -> 0, lag 20, and a dry run\n%s", got, out)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] != 15 || got[1] != 20 {
		t.Fatalf("a dry run changed the group's offsets: %v", got)
	}

	if _, _, err := runCLI(t, "offsets", "reset", file, "--to-earliest", "--execute"); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] != 0 || got[1] != 0 {
		t.Fatalf("after --to-earliest the group holds %v, want 0 and 0", got)
	}
	if _, _, err := runCLI(t, "offsets", "reset", file, "--topic", "films", "--partitions", "1", "--to-offset", "7", "--execute"); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] != 0 || got[1] != 7 {
		t.Fatalf("after --partitions 1 --to-offset 7 the group holds %v, want 0 and 7", got)
	}
	if _, _, err := runCLI(t, "offsets", "reset", file, "--to-time", "2026-12-01T08:30:00Z", "--execute"); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] != 10 || got[1] != 10 {
		t.Fatalf("after --to-time 08:30 the group holds %v, want 10 and 10 (the first 09:00 records)", got)
	}
	if _, _, err := runCLI(t, "offsets", "reset", file, "--to-latest", "--execute"); err != nil {
		t.Fatal(err)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] != 20 || got[1] != 20 {
		t.Fatalf("after --to-latest the group holds %v, want 20 and 20", got)
	}

	for _, bad := range [][]string{
		{"--to-offset", "99", "--execute"},          // outside the log
		{"--to-earliest", "--to-latest"},            // two targets
		{},                                          // none
		{"--topic", "other", "--to-earliest"},       // not the pipeline's
		{"--partitions", "5", "--to-earliest"},      // no such partition
		{"--to-time", "yesterday", "--to-earliest"}, // unparsable
	} {
		if _, _, err := runCLI(t, append([]string{"offsets", "reset", file}, bad...)...); err == nil {
			t.Errorf("reset %v succeeded", bad)
		}
	}

	// A live member: refused, nothing changed.
	member, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("films-group"), kgo.ConsumeTopics("films"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	deadline := time.Now().Add(30 * time.Second)
	for {
		gs, err := adm.DescribeGroups(ctx, "films-group")
		if err == nil && len(gs["films-group"].Members) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test's consumer never joined the group")
		}
		pollCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollRecords(pollCtx, 1) // joins
		cancel()
	}
	_, _, err = runCLI(t, "offsets", "reset", file, "--to-earliest", "--execute")
	if err == nil || !strings.Contains(err.Error(), "films-group has 1 active member") || !strings.Contains(err.Error(), "stop every process running pipeline films") {
		t.Fatalf("reset with a live member: err = %v, want a refusal naming the group", err)
	}
	if got := committedOffsets(t, adm, "films-group", "films"); got[0] < 20 || got[1] < 20 {
		t.Fatalf("a refused reset changed the group's offsets: %v", got)
	}
}

// The scenario, end to end: an exactly-once SQL pipeline stops
// because the broker restarted empty; show names the problem; a reset
// makes the pipeline resume exactly where it was told.
func TestOffsetsResetExactlyOnceSQLResumesWhereTold(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) { testOffsetsResetExactlyOnceSQL(t, kind) })
	}
}

func testOffsetsResetExactlyOnceSQL(t *testing.T, kind string) {
	ctx := context.Background()
	var db testSQL
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	var err error
	if kind == "mysql" {
		if dsn = os.Getenv("SLUICE_TEST_MYSQL_DSN"); dsn == "" {
			dsn = "root@tcp(127.0.0.1:3306)/test"
		}
		if db.std, err = dbsql.Open("mysql", dsn); err == nil {
			err = db.std.PingContext(ctx)
			t.Cleanup(func() { db.std.Close() })
		}
	} else {
		if dsn == "" {
			dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		if db.pg, err = pgx.Connect(ctx, dsn); err == nil {
			t.Cleanup(func() { db.pg.Close(context.Background()) })
		}
	}
	if err != nil {
		t.Fatalf("connecting to the test %s: %v", kind, err)
	}
	pipe := fmt.Sprintf("offreset_%d", time.Now().UnixNano()%1e9)
	table := pipe + "_t"
	t.Cleanup(func() {
		db.exec("DROP TABLE IF EXISTS " + table)
		db.exec("DELETE FROM sluice_offsets WHERE pipeline = '" + pipe + "'")
	})
	count := func(where string) int64 {
		n, err := db.int("SELECT count(*) FROM " + table + " " + where)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	fileFor := func(broker string) string {
		return writeFile(t, fmt.Sprintf(`
name: %s
source: {kafka: {brokers: [%s], topics: [films], group: %s}}
format: {value: json}
delivery: exactly_once
sink:
  %s: {dsn: %q, table: %s, create_table: true}
`, pipe, broker, pipe, kind, dsn, table))
	}
	// run runs the pipeline until want rows are in the table (then stops
	// it), or until it stops by itself; it returns Run's error.
	run := func(file string, want int64) error {
		t.Helper()
		f, err := config.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b, err := assembly.Build(ctx, f.Pipelines[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- b.Pipeline.Run(runCtx) }()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				return err
			case <-time.After(50 * time.Millisecond):
			}
			if n, err := db.int("SELECT count(*) FROM " + table); err == nil && n >= want {
				cancel()
				return <-done
			}
		}
		cancel()
		<-done
		t.Fatalf("pipeline neither reached %d rows nor stopped", want)
		return nil
	}

	first, adm := startKafka(t)
	createTopicN(t, adm, "films", 1)
	produceAt(t, first.ListenAddrs(), "films", 0, 300, func(int) time.Time { return time.Now() })
	if err := run(fileFor(first.ListenAddrs()[0]), 300); err != nil {
		t.Fatal(err)
	}
	first.Close()

	// The broker comes back empty: 200 new records at offsets 0..199.
	second, adm := startKafka(t)
	createTopicN(t, adm, "films", 1)
	produceAt(t, second.ListenAddrs(), "films", 0, 200, func(int) time.Time { return time.Now() })
	file := fileFor(second.ListenAddrs()[0])
	if err := run(file, 301); err == nil || !strings.Contains(err.Error(), "sluice offsets reset") {
		t.Fatalf("pipeline with offsets ahead of the log: err = %v, want it stopped with the fix named", err)
	}

	out, _, err := runCLI(t, "offsets", "show", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	// TOPIC PARTITION GROUP SINK LOG-START LOG-END LAG PROBLEM...
	if got := tableRow(t, out, "films", 0); got[3] != "300" || got[4] != "0" || got[5] != "200" || !strings.Contains(out, "ahead of the log end") {
		t.Fatalf("show = %v, want sink 300, log 0..200, flagged ahead\n%s", got, out)
	}

	if _, _, err := runCLI(t, "offsets", "reset", file, "--to-offset", "50", "--execute"); err != nil {
		t.Fatal(err)
	}
	if stored, err := db.int("SELECT next_offset FROM sluice_offsets WHERE pipeline = '" + pipe + "' AND topic = 'films'"); err != nil || stored != 50 {
		t.Fatalf("sluice_offsets holds %d (%v), want 50", stored, err)
	}
	if got := committedOffsets(t, adm, pipe, "films"); got[0] != 50 {
		t.Fatalf("the group holds %v, want 50", got)
	}
	if err := run(file, 450); err != nil {
		t.Fatal(err)
	}
	// 300 rows of the first broker, then offsets 50..199 of the second.
	if n := count(""); n != 450 {
		t.Fatalf("table has %d rows, want 300 + 150", n)
	}
	if n := count("WHERE _offset < 50"); n != 50 {
		t.Errorf("%d rows below offset 50, want the first broker's 50: the reset to 50 was not honoured", n)
	}
	if n := count("WHERE _offset >= 50 AND _offset < 200"); n != 300 {
		t.Errorf("%d rows at offsets 50..199, want 150 from each broker", n)
	}
}

// testSQL is the test's own handle on PostgreSQL (pg) or MariaDB (std).
type testSQL struct {
	pg  *pgx.Conn
	std *dbsql.DB
}

func (d testSQL) int(q string) (int64, error) {
	var n int64
	if d.pg != nil {
		return n, d.pg.QueryRow(context.Background(), q).Scan(&n)
	}
	return n, d.std.QueryRow(q).Scan(&n)
}

func (d testSQL) exec(q string) {
	if d.pg != nil {
		d.pg.Exec(context.Background(), q)
		return
	}
	d.std.Exec(q)
}
