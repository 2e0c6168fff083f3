package sql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// BenchmarkMapperRows converts a batch of the Kafka -> SQL benchmark's
// records (bench_test.go) for its staging table: the sink's work per row
// before the database sees it.
func BenchmarkMapperRows(b *testing.B) {
	t := newTable(tableName{name: "bench"}, []column{
		{name: "id", dbType: "bigint", kind: kindInt, bits: 64, nullable: true},
		{name: "name", dbType: "text", kind: kindText, nullable: true},
		{name: "price", dbType: "numeric(10,2)", kind: kindDecimal, precision: 10, scale: 2, nullable: true},
		{name: "category", dbType: "text", kind: kindText, nullable: true},
		{name: "sku", dbType: "text", kind: kindText, nullable: true},
		{name: "description", dbType: "text", kind: kindText, nullable: true},
		{name: "in_stock", dbType: "boolean", kind: kindBool, nullable: true},
		{name: "updated_at", dbType: "timestamp with time zone", kind: kindTimestampTZ, nullable: true},
		{name: "_topic", dbType: "text", kind: kindText, nullable: true},
		{name: "_partition", dbType: "integer", kind: kindInt, bits: 32, nullable: true},
		{name: "_offset", dbType: "bigint", kind: kindInt, bits: 64, nullable: true},
		{name: "_sluice_batch", dbType: "bigint", kind: kindInt, bits: 64},
	})
	pg := &postgres{}
	m, err := newMapper(t, &config.SQLSink{}, false, pg.adapter, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]*connector.Record, 10000)
	for i := range batch {
		value := fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5,"category":"category-%02d","sku":"SKU-%08d","description":"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor","in_stock":%t,"updated_at":"2024-05-01T12:34:56Z"}`,
			i, i, i%1000, i%20, i, i%3 == 0)
		dec := json.NewDecoder(bytes.NewReader([]byte(value)))
		dec.UseNumber()
		rec := &connector.Record{Topic: "bench", Partition: int32(i % 6), Offset: int64(i), Timestamp: time.Now()}
		if err := dec.Decode(&rec.Fields); err != nil {
			b.Fatal(err)
		}
		batch[i] = rec
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, rows, bad, _, _ := m.rows(context.Background(), batch); len(rows) != len(batch) || len(bad) > 0 {
			b.Fatalf("%d rows, %d bad", len(rows), len(bad))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/row")
}
