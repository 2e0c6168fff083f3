package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/connector"
)

// summarize prints one line a second: generated rate, and per pipeline
// records in/out per second and lag.
func summarize(ctx context.Context, o Options, gen *Generator, built []*assembly.Built) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	type prev struct{ in, out int64 }
	last := make([]prev, len(built))
	var lastGen int64
	lastT := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			secs := now.Sub(lastT).Seconds()
			lastT = now
			g := gen.Produced()
			var b strings.Builder
			fmt.Fprintf(&b, "generated %5.0f/s", float64(g-lastGen)/secs)
			lastGen = g
			for i, bp := range built {
				st := bp.Pipeline.Status()
				fmt.Fprintf(&b, " | %s in %5.0f/s out %5.0f/s lag %d", st.Name,
					float64(st.RecordsIn-last[i].in)/secs, float64(st.RecordsOut-last[i].out)/secs, st.Lag)
				if m, ok := bp.Sink.(connector.Merger); ok {
					if ms := m.Merges(); len(ms) > 0 {
						last := ms[len(ms)-1]
						fmt.Fprintf(&b, " merges %d (last %d rows, %s, %dms)", len(ms), last.Records, last.Trigger, last.Took.Milliseconds())
					}
				}
				if st.State != "running" {
					fmt.Fprintf(&b, " [%s]", st.State)
				}
				last[i] = prev{st.RecordsIn, st.RecordsOut}
			}
			if o.Interactive {
				fmt.Fprintf(o.Out, "\r\033[K%s", b.String())
			} else {
				fmt.Fprintln(o.Out, b.String())
			}
		}
	}
}
