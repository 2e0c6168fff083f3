package assembly

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/bigquery"
)

func init() { sinkBuilders = append(sinkBuilders, buildBigQuerySink) }

// buildBigQuerySink builds the bigquery sink. Every bigquery pipeline of
// the process with the same project, endpoints and max_connections shares
// one Storage Write client, so the connection bound holds per process.
func buildBigQuerySink(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, bool, error) {
	if p.Sink.BigQuery == nil {
		return nil, false, nil
	}
	s, err := bigquery.New(ctx, bigquery.Options{Config: *p.Sink.BigQuery, Pipeline: p.Name, Logger: log,
		ExactlyOnce: p.Delivery == config.ExactlyOnce})
	if err != nil {
		return nil, true, err
	}
	return s, true, nil
}
