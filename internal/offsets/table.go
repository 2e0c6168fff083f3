package offsets

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteShow prints positions as `sluice offsets show` does: both stores,
// the log, the lag from where the pipeline resumes, and any problem.
func WriteShow(w io.Writer, ps []Position, withStore bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "TOPIC\tPARTITION\tGROUP"
	if withStore {
		head += "\tSINK"
	}
	fmt.Fprintln(tw, head+"\tLOG-START\tLOG-END\tLAG\tPROBLEM")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%d\t%s", p.Topic, p.Partition, show(p.Group))
		if withStore {
			fmt.Fprintf(tw, "\t%s", show(p.Sink))
		}
		problem := p.Problem()
		if problem == "" {
			problem = "-"
		}
		fmt.Fprintf(tw, "\t%d\t%d\t%s\t%s\n", p.LogStart, p.LogEnd, lag(p.Current(), p), problem)
	}
	return tw.Flush()
}

// WriteReset prints a reset plan like kafka-consumer-groups
// --reset-offsets: current and new position, the log, and the lag after.
func WriteReset(w io.Writer, ps []Position) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW\tLOG-START\tLOG-END\tLAG")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition, show(p.Current()), p.New, p.LogStart, p.LogEnd, lag(p.New, p))
	}
	return tw.Flush()
}

func show(off int64) string {
	if off == None {
		return "-"
	}
	return strconv.FormatInt(off, 10)
}

// lag is the records from off to the log end; "-" when nothing is stored
// or off does not fit the log.
func lag(off int64, p Position) string {
	if off == None || off > p.LogEnd || off < p.LogStart {
		return "-"
	}
	return strconv.FormatInt(p.LogEnd-off, 10)
}
