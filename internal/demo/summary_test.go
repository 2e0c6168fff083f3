package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestSummaryRedrawsInPlaceOnATerminal: on a terminal the second tick
// moves the cursor up over the first block instead of scrolling.
func TestSummaryRedrawsInPlaceOnATerminal(t *testing.T) {
	rows := []summaryRow{
		{Name: "events-to-kafka", State: "running", InPerSec: 2000, OutPerSec: 1990, Lag: 12, InFlight: 300},
		{Name: "orders-to-sqlite", State: "paused", Extra: "merges 3 (last 2000 rows, records, 40 ms)"},
	}
	var out bytes.Buffer
	drawn := redraw(&out, terminalLines(2000, rows), 0)
	if drawn != 3 || strings.Contains(out.String(), "\033[3A") {
		t.Fatalf("first draw: %d lines, %q", drawn, out.String())
	}
	out.Reset()
	redraw(&out, terminalLines(2000, rows), drawn)
	if !strings.HasPrefix(out.String(), "\033[3A") {
		t.Fatalf("second draw does not move up over the first: %q", out.String())
	}
	for _, want := range []string{"lag     12", "in flight    300", "merges 3", "[paused]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("terminal block lacks %q: %q", want, out.String())
		}
	}
}

// TestSummaryPipedPrintsOneTimedLinePerPipeline: piped output has no
// escape codes and gives each pipeline a short line with the time.
func TestSummaryPipedPrintsOneTimedLinePerPipeline(t *testing.T) {
	rows := []summaryRow{
		{Name: "events-to-kafka", State: "running", InPerSec: 2000, OutPerSec: 1990, Lag: 12, InFlight: 300},
		{Name: "purchases-to-bigquery", State: "running", Extra: "tables 20, connections 2 (peak 2)"},
	}
	var out bytes.Buffer
	printPiped(&out, time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC), 2000, rows)
	want := "13:04:05 generated 2000 events/s\n" +
		"13:04:05 events-to-kafka running: in 2000/s, out 1990/s, lag 12, in flight 300\n" +
		"13:04:05 purchases-to-bigquery running: in 0/s, out 0/s, lag 0, in flight 0, tables 20, connections 2 (peak 2)\n"
	if out.String() != want {
		t.Fatalf("piped summary:\n%s\nwant:\n%s", out.String(), want)
	}
}
