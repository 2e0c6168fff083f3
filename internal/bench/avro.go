package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Event20Schema is the 20-field record of the Avro scenario (a typical
// clickstream event).
const Event20Schema = `{"type":"record","name":"Event","namespace":"bench","fields":[
 {"name":"event_id","type":"long"},{"name":"user_id","type":"long"},
 {"name":"session_id","type":{"type":"string","logicalType":"uuid"}},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["VIEW","CLICK","PURCHASE"]}},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"amount","type":"double"},{"name":"quantity","type":"int"},
 {"name":"currency","type":"string"},{"name":"country","type":"string"},
 {"name":"ip","type":"string"},{"name":"user_agent","type":"string"},
 {"name":"page","type":"string"},{"name":"referrer","type":["null","string"],"default":null},
 {"name":"mobile","type":"boolean"},{"name":"latency_ms","type":"int"},
 {"name":"score","type":"float"},{"name":"campaign","type":["null","string"],"default":null},
 {"name":"position","type":"int"},{"name":"experiment","type":"string"},
 {"name":"consent","type":"boolean"}]}`

// preloadAvro writes n 20-field Avro records in Confluent wire format.
func preloadAvro(ctx context.Context, brokers []string, registryURL, topic string, n int, partitions int32) error {
	if err := createTopic(ctx, brokers, topic, partitions); err != nil {
		return err
	}
	enc, err := codec.NewEncoder(codec.Options{Value: codec.FormatAvroConfluent, SchemaRegistry: codec.RegistryOptions{URL: registryURL}}, Event20Schema)
	if err != nil {
		return err
	}
	kinds := []string{"VIEW", "CLICK", "PURCHASE"}
	return produceEach(ctx, brokers, n, "Avro records", func(i int) (*kgo.Record, error) {
		f := map[string]any{
			"event_id": int64(i), "user_id": int64(i % 5000), "session_id": fmt.Sprintf("8b6f7b2e-4c1d-4a7e-9f3a-%012d", i%100000),
			"kind": kinds[i%3], "at": time.UnixMicro(1700000000000000 + int64(i)).UTC(), "amount": float64(i%10000) / 100,
			"quantity": int64(1 + i%5), "currency": "EUR", "country": "DE", "ip": "203.0.113.77",
			"user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
			"page":       "/checkout/confirm?step=3", "referrer": "https://example.com/cart", "mobile": i%2 == 0,
			"latency_ms": int64(i % 500), "score": 0.75, "campaign": nil, "position": int64(i % 20),
			"experiment": "checkout-v2", "consent": true,
		}
		v, err := enc.Encode(ctx, topic, &connector.Record{Topic: topic, Fields: f})
		if err != nil {
			return nil, err
		}
		return &kgo.Record{Topic: topic, Value: v}, nil
	})
}
