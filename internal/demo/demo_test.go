package demo

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/devstack"
)

// TestDemoMovesEventsEndToEnd runs the demo as a user would (on free ports)
// and checks what it promises: events generated, copied to Kafka, written
// to the file, and a live summary printed.
func TestDemoMovesEventsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Stack:  devstack.Options{},
		OutDir: dir,
		// Half the demo's default rate: the test runs under the race
		// detector beside other packages' tests, where SQLite (pure Go)
		// writes a few hundred rows/s and a pause-mode merge waits for
		// everything read to be written first.
		Rate:     1000,
		Duration: 12 * time.Second,
		Out:      &out,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "generated") {
		t.Fatalf("no live summary in the output:\n%s", text)
	}
	// Not a terminal: no cursor movement, and one short line per pipeline
	// at each interval (a 420-character line per second was the bug).
	if strings.Contains(text, "\033[") {
		t.Fatalf("piped output holds terminal escape codes:\n%q", text)
	}
	live := regexp.MustCompile(`^\d\d:\d\d:\d\d `)
	for _, l := range strings.Split(text, "\n") {
		if live.MatchString(l) && len(l) > 160 {
			t.Fatalf("piped output has a %d-character line:\n%s", len(l), l)
		}
	}
	for _, name := range []string{"events-to-kafka", "events-to-file", "orders-to-sqlite", "purchases-to-bigquery", "alerts-from-pubsub"} {
		if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d ` + name + ` running: in \d+/s, out \d+/s, lag \d+, in flight \d+`).MatchString(text) {
			t.Fatalf("no live line of its own for %s:\n%s", name, text)
		}
	}
	m := regexp.MustCompile(`events-to-kafka\s+read (\d+), wrote (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no final tally:\n%s", text)
	}
	wrote, _ := strconv.Atoi(m[2])
	if wrote < 1000 {
		t.Fatalf("events-to-kafka wrote %d events in 12 s at 1000/s", wrote)
	}
	ps := regexp.MustCompile(`alerts-from-pubsub\s+read (\d+), wrote (\d+)`).FindStringSubmatch(text)
	if ps == nil {
		t.Fatalf("no Pub/Sub pipeline tally:\n%s", text)
	}
	if n, _ := strconv.Atoi(ps[2]); n < 100 {
		t.Fatalf("alerts-from-pubsub wrote %d alerts to Kafka in 12 s at 50/s", n)
	}
	// The final tally counts merges finished during the graceful stop too:
	// under the race detector on a loaded machine the first may end there.
	if !regexp.MustCompile(`orders-to-sqlite\s+read .* merges [1-9]`).MatchString(text) {
		t.Fatalf("the SQLite pipeline shows no merge:\n%s", text)
	}
	bq := regexp.MustCompile(`BigQuery emulator: (\d+) tables, (\d+) rows, peak (\d+) connections`).FindStringSubmatch(text)
	if bq == nil {
		t.Fatalf("no BigQuery tally:\n%s", text)
	}
	tables, _ := strconv.Atoi(bq[1])
	rows, _ := strconv.Atoi(bq[2])
	conns, _ := strconv.Atoi(bq[3])
	if tables < 5 || rows == 0 || conns > 2 {
		t.Fatalf("BigQuery: %d tables, %d rows, peak %d connections; want several tables through at most 2 connections", tables, rows, conns)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "shop.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var orders, views int
	if err := db.QueryRow("SELECT count(*) FROM orders").Scan(&orders); err != nil || orders == 0 {
		t.Fatalf("merged orders: %d, %v", orders, err)
	}
	if err := db.QueryRow("SELECT coalesce(sum(views), 0) FROM page_views_per_page").Scan(&views); err != nil || views == 0 {
		t.Fatalf("merged page views: %d, %v", views, err)
	}
	// The broker was in memory: offsets kept for it would make a run of
	// the file against a new `sluice dev` skip that many records.
	var stale int
	if err := db.QueryRow("SELECT count(*) FROM sluice_offsets").Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("shop.db keeps %d offsets of the demo's gone broker (%v)", stale, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pipelines.yaml")); err != nil {
		t.Fatalf("the demo's pipeline file was not written: %v", err)
	}
	// The commands that run the file are printed at the end
	// (cmd/sluice's TestDemoFileRunsAsPrinted runs them).
	if !strings.Contains(text, "sluice run "+filepath.Join(dir, "pipelines.yaml")+"\n") || !strings.Contains(text, "--pubsub-subscription alerts-sluice:alerts") {
		t.Fatalf("the demo does not print how to run its file:\n%s", text)
	}
	f, err := os.Open(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"topic":"demo.events"`) || !strings.Contains(sc.Text(), `"kind":`) {
			t.Fatalf("unexpected line %s", sc.Text())
		}
		lines++
	}
	if lines < 1000 {
		t.Fatalf("events.jsonl has %d lines", lines)
	}
}
