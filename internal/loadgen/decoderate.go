package loadgen

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// decodeCounter reads the monitored topics from their end, as a consumer
// without a group, decodes every value (Avro in Confluent's wire format)
// and counts, per topic, the events that decoded and those that did not:
// events per second as a consumer sees them, not offsets.
type decodeCounter struct {
	mu      sync.Mutex
	decoded map[string]int64
	failed  map[string]int64
	// lastErr is the latest decode failure, for the sample's error.
	lastErr string
}

func (d *decodeCounter) counts() (decoded, failed map[string]int64, lastErr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	decoded, failed = map[string]int64{}, map[string]int64{}
	for k, v := range d.decoded {
		decoded[k] = v
	}
	for k, v := range d.failed {
		failed[k] = v
	}
	return decoded, failed, d.lastErr
}

// runDecodeCounter consumes until ctx ends; its error is for a client or
// registry client that cannot start.
func runDecodeCounter(ctx context.Context, o MonitorOptions, d *decodeCounter, started chan<- error) {
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: o.RegistryURL})
	if err != nil {
		started <- fmt.Errorf("--registry-url: %w", err)
		return
	}
	dec, err := codec.NewAvroConfluent(reg, "")
	if err != nil {
		started <- err
		return
	}
	opts := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())}
	if len(o.Topics) > 0 {
		opts = append(opts, kgo.ConsumeTopics(o.Topics...))
	} else {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics("^[^_].*"))
	}
	cl, err := kgo.NewClient(append(opts, o.ClientOptions...)...)
	if err != nil {
		started <- fmt.Errorf("creating the decoding consumer: %w", err)
		return
	}
	defer cl.Close()
	started <- nil
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			rec := &connector.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value}
			err := dec.Decode(ctx, rec)
			d.mu.Lock()
			if err != nil {
				d.failed[r.Topic]++
				d.lastErr = fmt.Sprintf("decoding %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			} else {
				d.decoded[r.Topic]++
			}
			d.mu.Unlock()
		})
	}
}
