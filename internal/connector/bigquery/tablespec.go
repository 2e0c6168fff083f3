package bigquery

import (
	"fmt"
	"strings"

	bq "cloud.google.com/go/bigquery"

	"github.com/sluice-dev/sluice/internal/connector"
)

// newTableMetadata is what the sink asks for when it creates a table:
// schema and the configured partitioning, clustering, description and
// labels. BigQuery checks the spec against the schema (a partition column
// that is missing or not TIMESTAMP, DATE or DATETIME, more than 4
// clustering columns) and refuses the table with a 400, which makes its
// records bad input (or stops the pipeline when the table name is a
// constant).
func (t *tables) newTableMetadata(schema bq.Schema) *bq.TableMetadata {
	md := &bq.TableMetadata{
		Schema:                 schema,
		Description:            t.cfg.Description,
		RequirePartitionFilter: t.cfg.RequirePartitionFilter,
	}
	if tp := t.cfg.TimePartitioning; tp != nil {
		md.TimePartitioning = &bq.TimePartitioning{
			Type: bq.TimePartitioningType(tp.Type), Field: tp.Field, Expiration: tp.Expiration,
		}
	}
	if len(t.cfg.Clustering) > 0 {
		md.Clustering = &bq.Clustering{Fields: t.cfg.Clustering}
	}
	if len(t.cfg.Labels) > 0 {
		md.Labels = t.cfg.Labels
	}
	return md
}

// typeChangeError is a record whose field has another type than the
// table's column: BigQuery cannot change a column's type (evolution only
// adds NULLABLE columns), so retrying never helps and the error is
// permanent.
func typeChangeError(table string, s *connector.Schema, conflicts []string) error {
	return connector.Permanent(fmt.Errorf("table %s: schema %s (id %d) changes a column's type, which BigQuery refuses (only new NULLABLE columns can be added): %s",
		table, s.Name, s.ID, strings.Join(conflicts, "; ")))
}
