package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// pipedSummaryEvery is the summary's interval when stdout is not a
// terminal: a file or a pipe keeps every line, so fewer of them.
const pipedSummaryEvery = 5 * time.Second

// summaryRow is one pipeline at one tick of the summary.
type summaryRow struct {
	Name      string
	State     pipeline.State
	InPerSec  float64
	OutPerSec float64
	Lag       int64
	InFlight  int64
	Extra     string // what the sink shows: merges, BigQuery tables
}

// summarize prints, at each interval, the generated rate and per pipeline
// the records in/out per second, lag, and what its sink shows (merges;
// BigQuery tables and connections). On a terminal the block is redrawn in
// place each second; otherwise (a file, a pipe, tee) every five seconds
// each pipeline gets one short line of its own, with the time.
func summarize(ctx context.Context, o Options, gen *Generator, stack *devstack.Stack, built []*assembly.Built) error {
	every := time.Second
	if !o.Interactive {
		every = pipedSummaryEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	type prev struct{ in, out int64 }
	last := make([]prev, len(built))
	var lastGen int64
	lastT := time.Now()
	drawn := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			secs := now.Sub(lastT).Seconds()
			lastT = now
			g := gen.Produced()
			generated := float64(g-lastGen) / secs
			lastGen = g
			rows := make([]summaryRow, 0, len(built))
			for i, bp := range built {
				st := bp.Pipeline.Status()
				r := summaryRow{
					Name: st.Name, State: st.State, Lag: st.Lag, InFlight: st.InFlightRecords,
					InPerSec:  float64(st.RecordsIn-last[i].in) / secs,
					OutPerSec: float64(st.RecordsOut-last[i].out) / secs,
				}
				last[i] = prev{st.RecordsIn, st.RecordsOut}
				if m, ok := bp.Sink.(connector.Merger); ok {
					if ms := m.Merges(); len(ms) > 0 {
						l := ms[len(ms)-1]
						r.Extra = fmt.Sprintf("merges %d (last %d rows, %s, %d ms)", len(ms), l.Records, l.Trigger, l.Took.Milliseconds())
					}
				}
				if bp.Config.Sink.BigQuery != nil && stack.BigQuery != nil {
					bq := stack.BigQuery.Stats()
					r.Extra = fmt.Sprintf("tables %d, connections %d (peak %d)", len(bq.RowsByTable), bq.Connections, bq.PeakConnections)
				}
				rows = append(rows, r)
			}
			if o.Interactive {
				drawn = redraw(o.Out, terminalLines(generated, rows), drawn)
			} else {
				printPiped(o.Out, now, generated, rows)
			}
		}
	}
}

// terminalLines is the block redrawn in place on a terminal: aligned
// columns, one line per pipeline under the generated rate.
func terminalLines(generated float64, rows []summaryRow) []string {
	lines := []string{fmt.Sprintf("generated %5.0f events/s", generated)}
	for _, r := range rows {
		var b strings.Builder
		fmt.Fprintf(&b, "%-22s in %6.0f/s  out %6.0f/s  lag %6d  in flight %6d", r.Name, r.InPerSec, r.OutPerSec, r.Lag, r.InFlight)
		if r.Extra != "" {
			b.WriteString("  " + r.Extra)
		}
		if r.State != pipeline.StateRunning {
			fmt.Fprintf(&b, "  [%s]", r.State)
		}
		lines = append(lines, b.String())
	}
	return lines
}

// printPiped writes one short line per pipeline, each starting with the
// time, so a log file or grep shows one pipeline's progress line by line.
func printPiped(w io.Writer, now time.Time, generated float64, rows []summaryRow) {
	ts := now.Format("15:04:05")
	fmt.Fprintf(w, "%s generated %.0f events/s\n", ts, generated)
	for _, r := range rows {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s: in %.0f/s, out %.0f/s, lag %d, in flight %d", ts, r.Name, r.State, r.InPerSec, r.OutPerSec, r.Lag, r.InFlight)
		if r.Extra != "" {
			b.WriteString(", " + r.Extra)
		}
		fmt.Fprintln(w, b.String())
	}
}

// redraw prints lines on a terminal, first moving up over the previous
// block so the summary stays in place; it returns the lines drawn.
func redraw(w io.Writer, lines []string, drawn int) int {
	if drawn > 0 {
		fmt.Fprintf(w, "\033[%dA", drawn)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "\r\033[K%s\n", l)
	}
	return len(lines)
}
