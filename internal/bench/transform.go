package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The transforms scenarios (issue 17) copy the same JSON records twice:
// sluice-json-kafka as they are (bytes through, nothing decoded), and
// sluice-transform-kafka through a filter that drops the 10% of test
// events and two set steps, decoding each record and encoding it again.

// transformSteps are sluice-transform-kafka's transforms and sink format.
const transformSteps = `format: {value: json}
transforms:
  - filter: 'value.kind != "test"'
  - set: {total_cents: 'int(value.amount * 100.0)', country: 'value.country.upperAscii()'}`

// jsonRecordBytes is about the size of a preloaded JSON record.
const jsonRecordBytes = 170

// jsonScenario reports whether sc reads the JSON records.
func jsonScenario(sc string) bool { return sc == "sluice-json-kafka" || sc == "sluice-transform-kafka" }

// preloadJSON writes n JSON events, one in ten of kind "test".
func preloadJSON(ctx context.Context, brokers []string, topic string, n int, partitions int32) error {
	if err := createTopic(ctx, brokers, topic, partitions); err != nil {
		return err
	}
	kinds := []string{"view", "click", "purchase", "view", "click", "purchase", "view", "click", "purchase", "test"}
	return produceEach(ctx, brokers, n, "JSON records", func(i int) (*kgo.Record, error) {
		v := fmt.Sprintf(`{"id":%d,"user_id":%d,"kind":%q,"amount":%d.25,"currency":"EUR","country":"de","page":"/checkout/confirm?step=3","mobile":%t,"latency_ms":%d}`,
			i, i%5000, kinds[i%10], i%10000, i%2 == 0, i%500)
		return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 10000)), Value: []byte(v)}, nil
	})
}

// produceEach produces record(i) for i in [0, n) and waits for every ack;
// it fails with the first error of either.
func produceEach(ctx context.Context, brokers []string, n int, what string, record func(i int) (*kgo.Record, error)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	errc := make(chan error, 1)
	for i := 0; i < n; i++ {
		r, err := record(i)
		if err != nil {
			return err
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("preloading %s: %w", what, err)
	default:
		return nil
	}
}
