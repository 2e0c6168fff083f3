package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func acksOption(acks string) (kgo.Acks, error) {
	switch acks {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("%q: use all, 1 or 0", acks)
}

func compressionOption(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q: use none, gzip, snappy, lz4 or zstd", name)
}

func producerOptions(o ProduceOptions) ([]kgo.Opt, error) {
	acks, err := acksOption(o.Acks)
	if err != nil {
		return nil, err
	}
	codec, err := compressionOption(o.Compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(o.Linger),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.MaxBufferedRecords(100000),
		kgo.ProducerBatchMaxBytes(cmp.Or(o.BatchMaxBytes, 1<<20)),
	}
	if o.Acks != "all" && o.Acks != "-1" {
		// Idempotent writes require acks=all.
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return append(opts, o.ClientOptions...), nil
}

// ensureTopic checks that the topic exists, creating it with
// --create-topic, so that a typo fails at once instead of after the
// client's metadata retries.
func ensureTopic(ctx context.Context, o ProduceOptions) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...)}, o.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, o.Topic)
	if err != nil {
		return fmt.Errorf("looking up topic %s on %v: %w", o.Topic, o.Brokers, err)
	}
	if t, ok := topics[o.Topic]; ok && t.Err == nil {
		return nil
	}
	if !o.CreateTopic {
		return fmt.Errorf("topic %s does not exist on %v: create it, or add --create-topic", o.Topic, o.Brokers)
	}
	resp, err := adm.CreateTopic(ctx, o.Partitions, o.ReplicationFactor, nil, o.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", o.Topic, err)
	}
	return nil
}
