package transform

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// BenchmarkFilterAndSet is the cost per record of a filter and two set
// fields on a 20-field JSON record, the shape of the Kafka -> Kafka
// benchmark, without the decode (measured in internal/codec).
func BenchmarkFilterAndSet(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"kind":"sale","amount":12.5,"country":"fr"`)
	for i := 3; i < 20; i++ {
		fmt.Fprintf(&sb, `,"field_%02d":"value number %d"`, i, i)
	}
	sb.WriteString("}")
	raw := sb.String()
	c, err := Compile([]Step{
		{Filter: `value.kind != "test" && value.amount > 0`},
		{Set: map[string]string{"total_cents": `int(value.amount * 100.0)`, "country": `value.country.upperAscii()`}},
	})
	if err != nil {
		b.Fatal(err)
	}
	// One decoded record per iteration, made outside the timer: set
	// changes the record in place.
	recs := make([]*connector.Record, b.N)
	for i := range recs {
		d := json.NewDecoder(strings.NewReader(raw))
		d.UseNumber()
		var f map[string]any
		if err := d.Decode(&f); err != nil {
			b.Fatal(err)
		}
		recs[i] = &connector.Record{Topic: "orders", Value: []byte(raw), Fields: f}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range recs {
		if keep, err := c.Transform(r); err != nil || !keep {
			b.Fatalf("keep=%v err=%v", keep, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkJSONDecodeTransformEncode is one record's whole trip through
// sluice-transform-kafka (internal/bench) on one core: decode the bench's
// JSON event, filter out test events, set two fields, encode it again.
// fast: the same through the JSON fast path (TransformJSON), which the
// scenario takes.
func BenchmarkJSONDecodeTransformEncode(b *testing.B) {
	c, err := Compile([]Step{
		{Filter: `value.kind != "test"`},
		{Set: map[string]string{"total_cents": `int(value.amount * 100.0)`, "country": `value.country.upperAscii()`}},
	})
	if err != nil {
		b.Fatal(err)
	}
	kinds := []string{"view", "click", "purchase", "view", "click", "purchase", "view", "click", "purchase", "test"}
	values := make([][]byte, 1000)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"id":%d,"user_id":%d,"kind":%q,"amount":%d.25,"currency":"EUR","country":"de","page":"/checkout/confirm?step=3","mobile":%t,"latency_ms":%d}`,
			i, i%5000, kinds[i%10], i%10000, i%2 == 0, i%500)
	}
	ctx := context.Background()
	var dec codec.JSON
	var enc codec.JSONEncoder
	for _, fast := range []bool{false, true} {
		b.Run(map[bool]string{false: "map", true: "fast"}[fast], func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := &connector.Record{Topic: "events", Value: values[i%len(values)]}
				var keep bool
				var err error
				if fast {
					keep, err = c.TransformJSON(r)
				} else {
					if err := dec.Decode(ctx, r); err != nil {
						b.Fatal(err)
					}
					keep, err = c.Transform(r)
				}
				if err != nil {
					b.Fatal(err)
				}
				if !keep {
					continue
				}
				if _, err := enc.Encode(ctx, "out", r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
