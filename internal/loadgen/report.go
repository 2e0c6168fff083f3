package loadgen

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Report is a self-contained HTML page: a few facts and line charts over
// time. It is drawn as inline SVG with a small inline script for hover
// values, so it opens offline and can be mailed or attached to a ticket.
// (go-echarts, the first choice, loads echarts.min.js from a CDN and does
// not ship the file; a report that needs the internet is not one.)
type Report struct {
	Title     string
	Generated time.Time
	// Facts are label/value rows shown above the charts.
	Facts  [][2]string
	Charts []Chart
}

// Chart is one line chart; X is seconds since the start of the run.
type Chart struct {
	Title  string
	Unit   string // shown on the y axis, e.g. "records/s"
	Series []Series
	// Lines are horizontal limits (a quota, a capacity) drawn dashed
	// across the chart.
	Lines []Line `json:",omitempty"`
}

// Line is a horizontal line at Y, named in the legend.
type Line struct {
	Name string  `json:"name"`
	Y    float64 `json:"y"`
}

// Series is one line of a chart.
type Series struct {
	Name   string    `json:"name"`
	Points []float64 `json:"y"`
	// X holds the seconds since the start for each point of Points.
	X []float64 `json:"x"`
}

// WriteReportFile writes r to path.
func WriteReportFile(path string, r Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if err := WriteReport(f, r); err != nil {
		f.Close()
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing report %s: %w", path, err)
	}
	return nil
}

var palette = []string{"#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"}

// WriteReport writes r as one HTML document with no external reference.
func WriteReport(w io.Writer, r Report) error {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px auto;max-width:980px;color:#111}
h1{font-size:20px}h2{font-size:16px;margin:28px 0 4px}
table.facts td{padding:2px 16px 2px 0}table.facts td:first-child{color:#555}
svg{background:#fff;border:1px solid #e5e7eb}svg text{font:11px system-ui,sans-serif;fill:#374151}
.grid{stroke:#e5e7eb}.hover{stroke:#9ca3af;stroke-dasharray:3 3}
.tip{font:12px ui-monospace,monospace;min-height:1.4em;color:#374151}
</style></head><body>
<h1>%s</h1>
<table class="facts">
`, esc(r.Title), esc(r.Title))
	facts := append([][2]string{{"generated", r.Generated.Format(time.RFC3339)}}, r.Facts...)
	for _, f := range facts {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", esc(f[0]), esc(f[1]))
	}
	b.WriteString("</table>\n")
	for i, c := range r.Charts {
		fmt.Fprintf(&b, "<h2>%s</h2>\n", esc(c.Title))
		if len(c.Series) == 0 {
			b.WriteString("<p>No data: nothing to draw was sampled.</p>\n")
			continue
		}
		writeSVG(&b, i, c)
		fmt.Fprintf(&b, "<div class=\"tip\" id=\"tip%d\"></div>\n", i)
	}
	// The data behind every chart, for the hover script and for anyone
	// who wants the numbers; json.Marshal escapes <, > and &, so the
	// payload cannot close the script element.
	data, err := json.Marshal(r.Charts)
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "<script type=\"application/json\" id=\"sluice-report-data\">%s</script>\n<script>%s</script>\n</body></html>\n", data, hoverScript)
	_, err = io.WriteString(w, b.String())
	return err
}

const (
	chartW, chartH                     = 960, 300
	marginL, marginR, marginT, marginB = 70, 16, 28, 36
)

func writeSVG(b *strings.Builder, idx int, c Chart) {
	xMax, yMax := 0.0, 0.0
	for _, s := range c.Series {
		for i, y := range s.Points {
			xMax = math.Max(xMax, s.X[i])
			yMax = math.Max(yMax, y)
		}
	}
	// A limit far above the data still shows: it says how much headroom
	// there is.
	for _, l := range c.Lines {
		yMax = math.Max(yMax, l.Y)
	}
	xTicks, xTop := niceTicks(xMax)
	yTicks, yTop := niceTicks(yMax)
	plotW, plotH := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	px := func(x float64) float64 { return marginL + x/xTop*plotW }
	py := func(y float64) float64 { return marginT + plotH - y/yTop*plotH }

	fmt.Fprintf(b, `<svg id="chart%d" data-xmax="%g" data-ymax="%g" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" role="img">`+"\n",
		idx, xTop, yTop, chartW, chartH, chartW, chartH)
	for _, t := range yTicks {
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			marginL, chartW-marginR, py(t), py(t), marginL-6, py(t)+4, humanNumber(t))
	}
	for _, t := range xTicks {
		fmt.Fprintf(b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			px(t), px(t), marginT, chartH-marginB, px(t), chartH-marginB+16, humanSeconds(t))
	}
	fmt.Fprintf(b, `<text x="12" y="16">%s</text><text x="%d" y="%d" text-anchor="end">time since start</text>`+"\n",
		html.EscapeString(c.Unit), chartW-marginR, chartH-4)
	legendX := marginL + 160
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		var pts strings.Builder
		for j, y := range s.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[j]), py(y))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"><title>%s</title></polyline>`+"\n",
			color, strings.TrimSpace(pts.String()), html.EscapeString(s.Name))
		if len(s.Points) == 1 {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(s.X[0]), py(s.Points[0]), color)
		}
		fmt.Fprintf(b, `<rect x="%d" y="8" width="10" height="10" fill="%s"/><text x="%d" y="17">%s</text>`+"\n",
			legendX, color, legendX+14, html.EscapeString(s.Name))
		legendX += 24 + 7*len(s.Name)
	}
	for _, l := range c.Lines {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#111827" stroke-width="1.2" stroke-dasharray="6 4"><title>%s</title></line>`+"\n",
			marginL, chartW-marginR, py(l.Y), py(l.Y), html.EscapeString(l.Name))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", chartW-marginR-4, py(l.Y)-4, html.EscapeString(l.Name))
	}
	fmt.Fprintf(b, `<line class="hover" id="hover%d" x1="0" x2="0" y1="%d" y2="%d" visibility="hidden"/>`+"\n</svg>\n",
		idx, marginT, chartH-marginB)
}

// hoverScript shows the values of every series at the time under the
// pointer. Inline, like everything else in the report.
const hoverScript = `
(function(){
var charts=JSON.parse(document.getElementById("sluice-report-data").textContent);
var L=70,R=16,W=960;
charts.forEach(function(c,i){
 var svg=document.getElementById("chart"+i),tip=document.getElementById("tip"+i),line=document.getElementById("hover"+i);
 if(!svg||!c.Series)return;
 var xmax=parseFloat(svg.dataset.xmax);
 svg.addEventListener("mousemove",function(e){
  var r=svg.getBoundingClientRect(),x=((e.clientX-r.left)*W/r.width-L)/(W-L-R)*xmax;
  var parts=[];
  c.Series.forEach(function(s){
   var best=-1,d=Infinity;
   for(var j=0;j<s.x.length;j++){var dd=Math.abs(s.x[j]-x);if(dd<d){d=dd;best=j;}}
   if(best>=0)parts.push(s.name+": "+(Math.round(s.y[best]*100)/100).toLocaleString());
  });
  var px=L+x/xmax*(W-L-R);line.setAttribute("x1",px);line.setAttribute("x2",px);line.setAttribute("visibility","visible");
  tip.textContent="t="+x.toFixed(1)+"s  "+parts.join("  ");
 });
 svg.addEventListener("mouseleave",function(){line.setAttribute("visibility","hidden");tip.textContent="";});
});
})();`

// niceTicks returns tick values from 0 covering max with 1, 2 or 5 times a
// power of ten as step, and the top of the axis.
func niceTicks(maxValue float64) ([]float64, float64) {
	if maxValue <= 0 || math.IsNaN(maxValue) || math.IsInf(maxValue, 0) {
		return []float64{0, 1}, 1
	}
	raw := maxValue / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := pow
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	top := math.Ceil(maxValue/step) * step
	var ticks []float64
	for t := 0.0; t <= top+step/2; t += step {
		ticks = append(ticks, t)
	}
	return ticks, top
}

func humanNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a >= 1 || a == 0:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
	return fmt.Sprintf("%.3g", v)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

func humanSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second / 10).String()
}
