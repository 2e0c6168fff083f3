package assembly

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	sqlsink "github.com/sluice-dev/sluice/internal/connector/sql"
)

func init() { sinkBuilders = append(sinkBuilders, buildSQLSink) }

// buildSQLSink builds the postgres, mysql or sqlite sink. With delivery:
// exactly_once it keeps offsets in the database, and the Kafka source
// builder hands it to the source as the OffsetStore.
func buildSQLSink(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, bool, error) {
	var kind string
	var cfg *config.SQLSink
	switch {
	case p.Sink.Postgres != nil:
		kind, cfg = "postgres", p.Sink.Postgres
	case p.Sink.MySQL != nil:
		kind, cfg = "mysql", p.Sink.MySQL
	case p.Sink.SQLite != nil:
		kind, cfg = "sqlite", p.Sink.SQLite
	default:
		return nil, false, nil
	}
	var fields connector.FieldVisitor
	if len(p.Transforms) == 0 && len(p.Route) == 0 && !p.Timestamp.NeedsFields() {
		// Transforms, routes and a timestamp field read (and change)
		// decoded values: the engine must decode them, and the sink write
		// what they left.
		var err error
		if fields, err = fieldVisitor(p.Format); err != nil {
			return nil, true, err
		}
	}
	s, err := sqlsink.New(ctx, sqlsink.Options{
		Kind:        kind,
		Config:      *cfg,
		Pipeline:    p.Name,
		ExactlyOnce: p.Delivery == config.ExactlyOnce,
		// Several workers write one partition: offsets per slot.
		Slots:  p.Parallelism != nil,
		Fields: fields,
		Logger: log,
	})
	return s, true, err
}
