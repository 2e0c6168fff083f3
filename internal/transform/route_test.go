package transform

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

func TestRouterPicksTheFirstMatchAndDefaults(t *testing.T) {
	r, err := CompileRouter([]Route{
		{When: `value.kind == "order"`, Sink: "orders"},
		{When: `value.amount > 100`, Sink: "big"},
		{Sink: "rest"},
	}, map[string]bool{"orders": true, "big": true, "rest": true})
	if err != nil {
		t.Fatal(err)
	}
	for value, want := range map[string]string{
		`{"kind":"order","amount":500}`:  "orders",
		`{"kind":"refund","amount":500}`: "big",
		`{"kind":"refund","amount":5}`:   "rest",
	} {
		got, err := r.Route(record(t, value))
		if err != nil || got != want {
			t.Errorf("%s: routed to %q (%v), want %q", value, got, err, want)
		}
	}
	_, err = r.Route(record(t, `{"kind":"refund"}`))
	var re *connector.RecordError
	if !errors.As(err, &re) || re.Reason != ReasonTransform || !strings.Contains(err.Error(), "route[1].when: no such key: amount") {
		t.Fatalf("err = %v, want a transform RecordError naming route[1].when", err)
	}
}
