package assembly

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/pubsub"
)

func init() {
	sourceBuilders = append(sourceBuilders, buildPubSubSource)
	sinkBuilders = append(sinkBuilders, buildPubSubSink)
}

func buildPubSubSource(ctx context.Context, p *config.Pipeline, _ connector.Sink, log *slog.Logger) (connector.Source, int, bool, error) {
	if p.Source.PubSub == nil {
		return nil, 0, false, nil
	}
	src, err := pubsub.NewSource(ctx, *p.Source.PubSub, pubsub.SourceOptions{Pipeline: p.Name, Logger: log})
	if err != nil {
		return nil, 0, true, err
	}
	// One Read takes what has arrived, up to the flow-control limit.
	return src, p.Source.PubSub.MaxOutstandingMessages, true, nil
}

func buildPubSubSink(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, bool, error) {
	if p.Sink.PubSub == nil {
		return nil, false, nil
	}
	s, err := pubsub.NewSink(ctx, *p.Sink.PubSub, log)
	return s, true, err
}
