package assembly

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/codec"
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
	o := bigquery.Options{Config: *p.Sink.BigQuery, Pipeline: p.Name, Logger: log,
		ExactlyOnce: p.Delivery == config.ExactlyOnce}
	switch {
	case p.Format.Value == "avro-confluent" && len(p.Transforms) == 0:
		// Avro straight into proto rows, without a map per record (the
		// sink falls back to decoded records when its table template
		// reads value fields).
		fields, err := fieldVisitor(p.Format)
		if err != nil {
			return nil, true, err
		}
		o.Fields = fields
	case p.Format.Value == "json" && len(p.Transforms) == 0 && len(p.Route) == 0 && !p.Timestamp.NeedsFields():
		// JSON straight into proto rows. Transforms, routes and a
		// timestamp field read decoded values: the engine must decode.
		f := p.Format
		f.Key = "raw" // keys stay with the engine's decoder
		dec, err := codec.NewDecoder(CodecOptions(f))
		if err != nil {
			return nil, true, err
		}
		o.JSON = dec
	}
	s, err := bigquery.New(ctx, o)
	if err != nil {
		return nil, true, err
	}
	return s, true, nil
}

// newBigQueryDeadLetter writes bad records to error tables in the bigquery
// sink's dataset (dlq.bigquery).
func newBigQueryDeadLetter(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.DeadLetter, error) {
	return bigquery.NewDeadLetterTable(ctx, bigquery.Options{Config: *p.Sink.BigQuery, Pipeline: p.Name, Logger: log}, p.DLQ.BigQuery.Table)
}
