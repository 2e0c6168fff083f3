package demo

import (
	"bufio"
	"bytes"
	"context"
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
		Stack:    devstack.Options{},
		OutDir:   dir,
		Rate:     1000,
		Duration: 6 * time.Second,
		Out:      &out,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "generated") || !strings.Contains(text, "events-to-kafka in") {
		t.Fatalf("no live summary in the output:\n%s", text)
	}
	m := regexp.MustCompile(`events-to-kafka\s+read (\d+), wrote (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no final tally:\n%s", text)
	}
	wrote, _ := strconv.Atoi(m[2])
	if wrote < 1000 {
		t.Fatalf("events-to-kafka wrote %d events in 6 s at 1000/s", wrote)
	}
	if _, err := os.Stat(filepath.Join(dir, "pipelines.yaml")); err != nil {
		t.Fatalf("the demo's pipeline file was not written: %v", err)
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
