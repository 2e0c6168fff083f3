package assembly

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/sluice-dev/sluice/internal/connector/route"
)

func init() {
	sinkBuilders = append(sinkBuilders, buildKafkaSink)
	sourceBuilders = append(sourceBuilders, buildKafkaSource)
}

func buildKafkaSink(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, bool, error) {
	if p.Sink.Kafka == nil {
		return nil, false, nil
	}
	var enc codec.Encoder
	if f := p.Sink.Kafka.Format; f != nil && f.Value != "raw" {
		var err error
		if enc, err = codec.NewEncoder(CodecOptions(*f), f.Schema); err != nil {
			return nil, true, fmt.Errorf("sink.kafka.%w", err)
		}
	}
	s, err := kafka.NewSink(ctx, *p.Sink.Kafka, kafka.SinkOptions{
		Encoder: enc, Logger: log, Pipeline: p.Name,
		ExactlyOnce: p.Delivery == config.ExactlyOnce,
	})
	return s, true, err
}

func buildKafkaSource(_ context.Context, p *config.Pipeline, sink connector.Sink, log *slog.Logger) (connector.Source, int, bool, error) {
	if p.Source.Kafka == nil {
		return nil, 0, false, nil
	}
	opts := kafka.SourceOptions{Pipeline: p.Name, Logger: log}
	if rs, ok := sink.(*route.Sink); ok && p.Delivery == config.ExactlyOnce {
		// Each sink keeps its own position; the source resumes from the
		// lowest (internal/connector/route/offsets.go).
		opts.Offsets = rs.OffsetStore()
		for _, s := range rs.Sinks() {
			if _, ok := s.(*kafka.Sink); ok {
				opts.Transactional = true
			}
		}
	} else if p.Delivery == config.ExactlyOnce {
		if store, ok := sink.(connector.OffsetStore); ok {
			opts.Offsets = store // the sink keeps offsets with its rows
		} else if _, ok := sink.(*kafka.Sink); ok {
			opts.Transactional = true // the sink commits them in its transactions
		}
	}
	src, err := kafka.NewSource(*p.Source.Kafka, opts)
	if err != nil {
		return nil, 0, true, err
	}
	return src, src.MaxPollRecords(), true, nil
}

func newDeadLetter(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.DeadLetter, error) {
	if p.DLQ.BigQuery != nil {
		return newBigQueryDeadLetter(ctx, p, log)
	}
	conn := config.KafkaConn{Brokers: p.DLQ.Brokers}
	if p.Source.Kafka != nil {
		conn = p.Source.Kafka.KafkaConn
		if len(p.DLQ.Brokers) > 0 {
			conn = config.KafkaConn{Brokers: p.DLQ.Brokers}
		}
	}
	return kafka.NewDeadLetter(ctx, conn, p.DLQ.Topic, p.Name, log)
}
