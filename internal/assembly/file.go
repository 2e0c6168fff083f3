package assembly

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/file"
)

func init() { sinkBuilders = append(sinkBuilders, buildFileSink) }

func buildFileSink(_ context.Context, p *config.Pipeline, _ *slog.Logger) (connector.Sink, bool, error) {
	if p.Sink.File == nil {
		return nil, false, nil
	}
	s, err := file.NewSink(p.Sink.File.Path, *p.Sink.File.Sync)
	return s, true, err
}
