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
)

// summarize prints, every second, the generated rate and per pipeline the
// records in/out per second, lag, and what its sink shows (merges; BigQuery
// tables and connections). On a terminal the block is redrawn in place;
// otherwise each tick prints one line.
func summarize(ctx context.Context, o Options, gen *Generator, stack *devstack.Stack, built []*assembly.Built) error {
	t := time.NewTicker(time.Second)
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
			lines := []string{fmt.Sprintf("generated %5.0f events/s", float64(g-lastGen)/secs)}
			lastGen = g
			for i, bp := range built {
				st := bp.Pipeline.Status()
				var b strings.Builder
				fmt.Fprintf(&b, "%-22s in %6.0f/s  out %6.0f/s  lag %5d", st.Name,
					float64(st.RecordsIn-last[i].in)/secs, float64(st.RecordsOut-last[i].out)/secs, st.Lag)
				last[i] = prev{st.RecordsIn, st.RecordsOut}
				if m, ok := bp.Sink.(connector.Merger); ok {
					if ms := m.Merges(); len(ms) > 0 {
						l := ms[len(ms)-1]
						fmt.Fprintf(&b, "  merges %d (last: %d rows, %s, %d ms)", len(ms), l.Records, l.Trigger, l.Took.Milliseconds())
					}
				}
				if bp.Config.Sink.BigQuery != nil && stack.BigQuery != nil {
					bq := stack.BigQuery.Stats()
					fmt.Fprintf(&b, "  tables %d, connections %d (peak %d)", len(bq.RowsByTable), bq.Connections, bq.PeakConnections)
				}
				if st.State != "running" {
					fmt.Fprintf(&b, "  [%s]", st.State)
				}
				lines = append(lines, b.String())
			}
			drawn = draw(o.Out, o.Interactive, lines, drawn)
		}
	}
}

// draw prints lines; on a terminal it first moves up over the previous
// block so the summary stays in place.
func draw(w io.Writer, interactive bool, lines []string, drawn int) int {
	if !interactive {
		fmt.Fprintln(w, strings.Join(lines, " | "))
		return 0
	}
	if drawn > 0 {
		fmt.Fprintf(w, "\033[%dA", drawn)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "\r\033[K%s\n", l)
	}
	return len(lines)
}
