package loadgen

import (
	"encoding/json"
	"html"
	"regexp"
	"strings"
	"testing"
)

// reportData checks that a report is self-contained HTML with one SVG
// per chart, and returns the chart data embedded in it.
func reportData(t *testing.T, page string) []Chart {
	t.Helper()
	if regexp.MustCompile(`(?i)<script[^>]*\ssrc=`).MatchString(page) {
		t.Error("the report loads a script from elsewhere")
	}
	if regexp.MustCompile(`(?i)(href|src)="https?://`).MatchString(page) {
		t.Error("the report links to the internet")
	}
	const open = `<script type="application/json" id="sluice-report-data">`
	i := strings.Index(page, open)
	if i < 0 {
		t.Fatalf("no chart data in the report:\n%s", page)
	}
	rest := page[i+len(open):]
	var charts []Chart
	if err := json.Unmarshal([]byte(rest[:strings.Index(rest, "</script>")]), &charts); err != nil {
		t.Fatal(err)
	}
	drawn := 0
	for _, c := range charts {
		if len(c.Series) > 0 {
			drawn++
		}
	}
	if n := strings.Count(page, "<svg "); n != drawn {
		t.Errorf("%d SVG charts for %d charts with data", n, drawn)
	}
	for _, c := range charts {
		if !strings.Contains(page, html.EscapeString(c.Title)) {
			t.Errorf("chart %q has no title in the page", c.Title)
		}
		for _, s := range c.Series {
			if !strings.Contains(page, "<title>"+html.EscapeString(s.Name)+"</title>") {
				t.Errorf("series %q is not drawn", s.Name)
			}
		}
	}
	return charts
}

func TestReportEscapesNamesAndKeepsDataInsideItsScript(t *testing.T) {
	r := Report{Title: "t", Charts: []Chart{{Title: "c", Series: []Series{
		{Name: `</script><script src="https://evil">`, X: []float64{0}, Points: []float64{1}},
	}}}}
	var b strings.Builder
	if err := WriteReport(&b, r); err != nil {
		t.Fatal(err)
	}
	charts := reportData(t, b.String())
	if charts[0].Series[0].Name != r.Charts[0].Series[0].Name {
		t.Errorf("name came back as %q", charts[0].Series[0].Name)
	}
}

func TestNiceTicksCoverTheData(t *testing.T) {
	for _, max := range []float64{0, 0.3, 1, 7, 9999, 12345, 4.2e6} {
		ticks, top := niceTicks(max)
		if top < max || ticks[0] != 0 || ticks[len(ticks)-1] != top || len(ticks) > 12 {
			t.Errorf("niceTicks(%v) = %v, %v", max, ticks, top)
		}
	}
}

// A limit is drawn dashed across the chart, named, and raises the axis
// to show it even far above the data.
func TestReportDrawsLimitLines(t *testing.T) {
	r := Report{Title: "t", Charts: []Chart{{Title: "ingress", Unit: "bytes/s",
		Series: []Series{{Name: "broker 0", X: []float64{0, 1}, Points: []float64{1e6, 2e6}}},
		Lines:  []Line{{Name: "ingress limit 50MB/s <quota>", Y: 50e6}}}}}
	var b strings.Builder
	if err := WriteReport(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.Contains(page, `stroke-dasharray="6 4"><title>ingress limit 50MB/s &lt;quota&gt;</title>`) || !strings.Contains(page, `data-ymax="5e+07"`) {
		t.Errorf("no dashed limit line at 50M in:\n%s", page)
	}
	if c := reportData(t, page); len(c[0].Lines) != 1 || c[0].Lines[0].Y != 50e6 {
		t.Errorf("report data lines %+v", c[0].Lines)
	}
}
