package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// Limit is a ceiling to draw on a broker chart: a quota or a documented
// capacity the measured figure is to be read against (a cluster sized
// for 50 MB/s of ingress, a plan's connection limit).
type Limit struct {
	// Figure is ingress, egress, connections, requests or load.
	Figure string
	// Value is in the chart's unit: bytes/s, connections, requests/s, or
	// percent for load.
	Value float64
	// Text is the limit as it was given, for the legend.
	Text string
}

// limitFigures are the figures a limit can be set on, and the unit each
// value is read in when it carries none.
var limitFigures = map[string]string{"ingress": "B/s", "egress": "B/s", "connections": "", "requests": "/s", "load": "%"}

// byteUnits are the byte rate units ParseLimit reads; decimal as the
// charts and clouds' quotas count, binary where the unit says so.
var byteUnits = []struct {
	suffix string
	factor float64
}{
	{"KiB/s", 1 << 10}, {"MiB/s", 1 << 20}, {"GiB/s", 1 << 30},
	{"kB/s", 1e3}, {"KB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9}, {"B/s", 1},
}

// ParseLimit reads a --limit value: FIGURE=VALUE, as ingress=50MB/s,
// egress=100MiB/s, connections=1000, requests=5000/s or load=80%.
func ParseLimit(s string) (Limit, error) {
	figure, value, ok := strings.Cut(strings.TrimSpace(s), "=")
	figure = strings.ToLower(strings.TrimSpace(figure))
	unit, known := limitFigures[figure]
	if !ok || !known {
		return Limit{}, fmt.Errorf("--limit: %q: want FIGURE=VALUE with FIGURE one of ingress, egress, connections, requests, load (e.g. ingress=50MB/s)", s)
	}
	value = strings.TrimSpace(value)
	number, factor := value, 1.0
	switch unit {
	case "B/s":
		for _, u := range byteUnits {
			if strings.HasSuffix(value, u.suffix) {
				number, factor = strings.TrimSuffix(value, u.suffix), u.factor
				break
			}
		}
	default:
		number = strings.TrimSuffix(value, unit)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(number), 64)
	if err != nil || v <= 0 {
		return Limit{}, fmt.Errorf("--limit: %s: %q is not a positive number%s", figure, value, unitHint(unit))
	}
	return Limit{Figure: figure, Value: v * factor, Text: figure + " limit " + value}, nil
}

func unitHint(unit string) string {
	switch unit {
	case "B/s":
		return " with a unit of B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s"
	case "%":
		return " of percent"
	}
	return ""
}

// limitLines are the lines of limits drawn on the chart of figure.
func limitLines(limits []Limit, figure string) []Line {
	var out []Line
	for _, l := range limits {
		if l.Figure == figure {
			out = append(out, Line{Name: l.Text, Y: l.Value})
		}
	}
	return out
}
