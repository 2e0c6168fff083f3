package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/demo"
)

// TestDemoFileRunsAsPrinted writes the demo's pipeline file and runs, one
// by one, the commands the demo prints at its end: `sluice dev` (creating
// the Pub/Sub subscription the file reads), the topics, `sluice run`,
// a load test and a Pub/Sub message, then `sluice status`. Against a fresh
// `sluice dev` the file used to stop at once on a missing subscription,
// and had no admin section for status or the dashboard.
func TestDemoFileRunsAsPrinted(t *testing.T) {
	host := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	addrs := demo.Addrs{
		Brokers:      []string{host(freePort(t))},
		RegistryURL:  "http://" + host(freePort(t)),
		BigQueryREST: host(freePort(t)),
		BigQueryGRPC: host(freePort(t)),
		PubSub:       host(freePort(t)),
		Admin:        host(freePort(t)),
	}
	dir := filepath.Join(t.TempDir(), "sluice-demo")
	path, _, err := demo.WriteFiles(context.Background(), dir, addrs)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]string
	for _, l := range demo.RunCommands(path, addrs) {
		words, err := shellWords(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(words) == 0 {
			continue // a comment
		}
		if words[0] != "sluice" {
			t.Fatalf("the demo prints a command that is not sluice's: %q", l)
		}
		lines = append(lines, words[1:])
	}
	// Order as printed, except that the topics are created before
	// `sluice run`, as the printed note says to without auto-creation.
	var dev, run []string
	var topics, others [][]string
	for _, w := range lines {
		switch {
		case w[0] == "dev":
			dev = w
		case w[0] == "run":
			run = w
		case w[0] == "topics":
			topics = append(topics, w)
		default:
			others = append(others, w)
		}
	}
	if dev == nil || run == nil || len(topics) != 4 || len(others) != 3 {
		t.Fatalf("the demo prints %q", lines)
	}
	// Both ways are run: the topics commands (the printed alternative)
	// against a broker that would also create them on first use.
	// Broker data in the test's directory, not the user's cache.
	dev = append(dev, "--data-dir", t.TempDir(), "--log-level", "warn")
	stack := startCLI(t, dev...)
	stack.waitOutput(t, 60*time.Second, "Press Ctrl-C to stop.")
	for _, w := range topics {
		if out, _, err := runCLI(t, w...); err != nil || !strings.Contains(out, "created topic") {
			t.Fatalf("sluice %s: %v %s", strings.Join(w, " "), err, out)
		}
	}
	pipelines := startCLI(t, append(run, "--log-level", "warn")...)
	var status []string
	for _, w := range others {
		if w[0] == "status" {
			status = w
			continue
		}
		if out, errOut, err := runCLI(t, w...); err != nil {
			t.Fatalf("sluice %s: %v\n%s%s\nsluice run:\n%s", strings.Join(w, " "), err, out, errOut, pipelines.out.String())
		}
	}
	want := map[string]int64{"events-to-kafka": 5000, "events-to-file": 5000, "orders-to-sqlite": 5000, "alerts-from-pubsub": 1}
	deadline := time.Now().Add(90 * time.Second)
	for {
		var list []admin.Summary
		out, _, err := runCLI(t, append(status, "--json")...)
		if err == nil {
			err = json.Unmarshal([]byte(out), &list)
		}
		done := err == nil
		for name, n := range want {
			i := slices.IndexFunc(list, func(s admin.Summary) bool { return s.Name == name })
			done = done && i >= 0 && list[i].RecordsOut >= n
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s, sluice status: %v\n%s\nsluice run:\n%s", err, out, pipelines.out.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, _, err := runCLI(t, status...)
	if err != nil || !strings.Contains(out, "purchases-to-bigquery") || !strings.Contains(out, "running") || !strings.Contains(out, "LAG AGE") {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(status, " "), err, out)
	}
}
