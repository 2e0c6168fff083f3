package codec

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// event20 is a typical 20-field clickstream event.
const event20Schema = `{"type":"record","name":"Event","namespace":"bench","fields":[
	{"name":"event_id","type":"long"},
	{"name":"user_id","type":"long"},
	{"name":"session_id","type":{"type":"string","logicalType":"uuid"}},
	{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["VIEW","CLICK","PURCHASE"]}},
	{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"amount","type":"double"},
	{"name":"quantity","type":"int"},
	{"name":"currency","type":"string"},
	{"name":"country","type":"string"},
	{"name":"ip","type":"string"},
	{"name":"user_agent","type":"string"},
	{"name":"page","type":"string"},
	{"name":"referrer","type":["null","string"],"default":null},
	{"name":"mobile","type":"boolean"},
	{"name":"latency_ms","type":"int"},
	{"name":"score","type":"float"},
	{"name":"campaign","type":["null","string"],"default":null},
	{"name":"position","type":"int"},
	{"name":"experiment","type":"string"},
	{"name":"consent","type":"boolean"}]}`

var event20 = map[string]any{
	"event_id":   int64(912345678901),
	"user_id":    int64(4242424242),
	"session_id": "8b6f7b2e-4c1d-4a7e-9f3a-2d1c0b9a8e7f",
	"kind":       "PURCHASE",
	"at":         time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
	"amount":     129.99,
	"quantity":   int64(3),
	"currency":   "EUR",
	"country":    "DE",
	"ip":         "203.0.113.77",
	"user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
	"page":       "/checkout/confirm?step=3",
	"referrer":   "https://example.com/cart",
	"mobile":     false,
	"latency_ms": int64(187),
	"score":      0.75,
	"campaign":   nil,
	"position":   int64(12),
	"experiment": "checkout-v2",
	"consent":    true,
}

func reportRecordsPerSecond(b *testing.B) {
	// The benchmark loop runs on one goroutine: this is per core.
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s/core")
}

func BenchmarkDecodeAvro20Fields(b *testing.B) {
	fake := fakeRegistry(b, map[int]string{1: event20Schema})
	dec, err := NewDecoder(Options{Value: FormatAvroConfluent, SchemaRegistry: RegistryOptions{URL: fake.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	value := wire(1, avroBody(b, event20Schema, event20))
	ctx := context.Background()
	rec := &connector.Record{Value: value}
	if err := dec.Decode(ctx, rec); err != nil || len(rec.Fields) != 20 {
		b.Fatalf("Decode = %v, %d fields", err, len(rec.Fields))
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := connector.Record{Value: value}
		if err := dec.Decode(ctx, &rec); err != nil {
			b.Fatal(err)
		}
	}
	reportRecordsPerSecond(b)
}

func BenchmarkDecodeJSON20Fields(b *testing.B) {
	value, err := JSONEncoder{}.Encode(context.Background(), "t", &connector.Record{Fields: event20})
	if err != nil {
		b.Fatal(err)
	}
	dec, err := NewDecoder(Options{Value: FormatJSON})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := connector.Record{Value: value}
		if err := dec.Decode(ctx, &rec); err != nil {
			b.Fatal(err)
		}
	}
	reportRecordsPerSecond(b)
}

func BenchmarkEncodeAvro20Fields(b *testing.B) {
	fake := fakeRegistry(b, map[int]string{})
	reg, err := NewRegistry(RegistryOptions{URL: fake.URL()})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := NewAvroConfluentEncoder(reg, event20Schema, SubjectTopic, true)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rec := &connector.Record{Fields: event20}
	if _, err := enc.Encode(ctx, "events", rec); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := enc.Encode(ctx, "events", rec); err != nil {
			b.Fatal(err)
		}
	}
	reportRecordsPerSecond(b)
}

// benchEvent is one of sluice bench's JSON events.
var benchEvent = []byte(`{"id":123456,"user_id":3456,"kind":"view","amount":3456.25,"currency":"EUR","country":"de","page":"/checkout/confirm?step=3","mobile":true,"latency_ms":456}`)

func BenchmarkDecodeJSONEvent(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := (JSON{}).Decode(ctx, &connector.Record{Value: benchEvent}); err != nil {
			b.Fatal(err)
		}
	}
	reportRecordsPerSecond(b)
}

// BenchmarkEncodeJSONEvent encodes a decoded JSON event (sluice bench's,
// plus a field a transform set) again and again, as the json sink format
// does a stream whose records share their keys.
func BenchmarkEncodeJSONEvent(b *testing.B) {
	ctx := context.Background()
	rec := &connector.Record{Value: benchEvent}
	if err := (JSON{}).Decode(ctx, rec); err != nil {
		b.Fatal(err)
	}
	rec.Fields["total_cents"] = int64(345625)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (JSONEncoder{}).Encode(ctx, "events", rec); err != nil {
			b.Fatal(err)
		}
	}
	reportRecordsPerSecond(b)
}

// BenchmarkScanJSONEvent indexes sluice bench's JSON event, as the
// transforms' JSON fast path does every record.
func BenchmarkScanJSONEvent(b *testing.B) {
	var members []RawMember
	b.ReportAllocs()
	for b.Loop() {
		var ok bool
		if members, ok = ScanJSONObject(benchEvent, members); !ok {
			b.Fatal("not indexed")
		}
	}
	reportRecordsPerSecond(b)
}
