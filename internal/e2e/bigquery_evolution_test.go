package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/api/option"

	"github.com/sluice-dev/sluice/internal/bqemu"
)

// TestBigQueryNewAvroVersionAddsANullableColumn: a producer moves to a
// schema version with a new optional field while the pipeline runs; the
// table gains a NULLABLE column and rows of both versions land.
func TestBigQueryNewAvroVersionAddsANullableColumn(t *testing.T) {
	const n = 1000
	e, addrs := startBQEmulator(t, bqemu.Faults{})
	brokers := startBroker(t).ListenAddrs()
	createTopic(t, brokers, "purchases", 3)
	regURL, _ := startRegistry(t, "127.0.0.1:0", "")
	v1 := fmt.Sprintf(bqPurchaseAvro, "")
	v2 := fmt.Sprintf(bqPurchaseAvro, `,
 {"name":"coupon","type":["null","string"],"default":null}`)
	bqProduceAvro(t, brokers, regURL, "purchases", v1, n, 0, func(i int) map[string]any { return bqPurchaseFields(i, 1) })
	bqRunPipeline(t, fmt.Sprintf(`
name: purchases
source:
  kafka: {brokers: [%s], topics: [purchases], group: purchases-bq}
format: {value: avro-confluent, schema_registry: {url: %q}}
on_error: fail
`, brokers[0], regURL)+bqSinkYAML(addrs, "purchases", 2, bqCreate))
	bqWaitCommitted(t, brokers, "purchases-bq", "purchases", time.Minute)

	bqProduceAvro(t, brokers, regURL, "purchases", v2, n, 0, func(i int) map[string]any {
		f := bqPurchaseFields(n+i, 1)
		f["coupon"] = fmt.Sprintf("SAVE%d", i%50)
		return f
	})
	bqWaitCommitted(t, brokers, "purchases-bq", "purchases", time.Minute)

	ctx := context.Background()
	c, err := bq.NewClient(ctx, bqProject, option.WithEndpoint("http://"+addrs.REST), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.Dataset(bqDataset).Table("purchases").Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := md.Schema[len(md.Schema)-1]
	if last.Name != "coupon" || last.Type != bq.StringFieldType || last.Required || last.Repeated {
		t.Fatalf("last column = %+v, want coupon NULLABLE STRING", last)
	}
	rows, err := e.Rows(ctx, bqProject, bqDataset, "purchases")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2*n {
		t.Fatalf("%d rows, want %d", len(rows), 2*n)
	}
	for _, r := range rows {
		id := r["id"].(int64)
		want := any(nil)
		if id >= n {
			want = fmt.Sprintf("SAVE%d", (id-n)%50)
		}
		if r["coupon"] != want {
			t.Fatalf("row %d: coupon %v, want %v", id, r["coupon"], want)
		}
	}
}
