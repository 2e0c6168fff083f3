package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// `sluice status` says why a pipeline does not move when its brokers
// cannot be reached, in the table's notes and in the detail, and says
// nothing of a healthy source in the table.
func TestStatusShowsAnUnreachableSource(t *testing.T) {
	since := time.Now().Add(-42 * time.Second)
	sick := &connector.SourceHealth{State: connector.SourceUnreachable, Since: since, Errors: 17,
		LastError: "unable to dial: dial tcp 127.0.0.1:9092: connect: connection refused"}
	want := "source unreachable for 42s (since " + since.Local().Format("15:04:05") + ", 17 errors): unable to dial: dial tcp 127.0.0.1:9092: connect: connection refused"

	var out bytes.Buffer
	printSummaries(&out, []admin.Summary{
		{Name: "films", State: pipeline.StateRunning, Degraded: true, Source: sick},
		{Name: "quiet", State: pipeline.StateRunning, Source: &connector.SourceHealth{State: connector.SourceHealthy}},
	})
	if !strings.Contains(out.String(), "films: "+want) || strings.Contains(out.String(), "quiet: source") {
		t.Fatalf("summary lacks %q for films only:\n%s", "films: "+want, out.String())
	}

	var d admin.Detail
	d.Status = pipeline.Status{Name: "films", State: pipeline.StateRunning, Degraded: true, Source: sick}
	out.Reset()
	printDetail(&out, d)
	if !strings.Contains(out.String(), "  "+strings.Replace(want, "source ", "source: ", 1)) {
		t.Fatalf("detail lacks the source line %q:\n%s", want, out.String())
	}
}
