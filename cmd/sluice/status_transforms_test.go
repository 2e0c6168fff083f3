package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// `sluice status NAME` shows the transforms, what they let through and
// what each routed sink wrote.
func TestStatusDetailShowsTransformsAndRoutes(t *testing.T) {
	var d admin.Detail
	d.Status = pipeline.Status{Name: "orders", State: pipeline.StateRunning, RecordsIn: 12000, Filtered: 10800}
	d.Transforms = []string{"filter", "set total_cents"}
	d.Routes = []admin.RouteStatus{{Sink: "orders", Out: 700}, {Sink: "rest", Default: true, Out: 500}}
	var out bytes.Buffer
	printDetail(&out, d)
	for _, want := range []string{
		"transforms: filter | set total_cents; in 12,000, filtered 10,800",
		"routes, out per sink: orders 700, rest (default) 500",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
