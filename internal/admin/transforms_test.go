package admin

import (
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/route"
	"github.com/sluice-dev/sluice/internal/transform"
)

// evenOdd routes records by offset parity.
type evenOdd struct{}

func (evenOdd) Route(r *connector.Record) (string, error) {
	if r.Offset%2 == 0 {
		return "even", nil
	}
	return "odd", nil
}

// The pipeline view shows the transforms' steps and, per route, what its
// sink made durable.
func TestDetailShowsTransformsAndRoutes(t *testing.T) {
	even, odd := &countSink{}, &countSink{}
	sink := route.New(evenOdd{}, map[string]connector.Sink{"even": even, "odd": odd})
	p := startPipeline(t, "routed", plainSource{newPropSource(300, nil)}, sink, 1)
	cfg := config.Pipeline{
		Name: "routed",
		Transforms: []transform.Step{
			{Filter: `value.kind != "test"`},
			{Set: map[string]string{"total_cents": "1", "country": `"NL"`}},
			{Mask: map[string]string{"card.number": "sha256"}},
		},
		Route: []transform.Route{{When: "offset % 2 == 0", Sink: "even"}, {Sink: "odd"}},
	}
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: p, Config: cfg, Sink: sink}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(srv.Handler())
	t.Cleanup(h.Close)
	waitFor(t, "records written", func() bool { return even.written.Load()+odd.written.Load() == 300 })
	// The route sink counts a part as out after its sink returned; the
	// pipeline's records_out follows the route sink's Write.
	waitForRecordsOut(t, p, 300)
	f := &fixture{http: h}
	var d Detail
	if code := f.do(t, "GET", "/v1/pipelines/routed", "", false, &d); code != 200 {
		t.Fatalf("status %d", code)
	}
	want := []string{"filter", "set country, total_cents", "mask card.number (sha256)"}
	if !slices.Equal(d.Transforms, want) {
		t.Fatalf("transforms %q, want %q", d.Transforms, want)
	}
	wantRoutes := []RouteStatus{{Sink: "even", Out: even.written.Load()}, {Sink: "odd", Default: true, Out: odd.written.Load()}}
	if !slices.Equal(d.Routes, wantRoutes) || d.Routes[0].Out == 0 || d.Routes[1].Out == 0 {
		t.Fatalf("routes %+v, want %+v", d.Routes, wantRoutes)
	}
}
