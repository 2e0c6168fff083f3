package bqemu

import (
	"slices"
	"strings"

	bq "google.golang.org/api/bigquery/v2"
)

// maxClusteringFields is BigQuery's limit on clustering columns.
const maxClusteringFields = 4

// partitionTypes are the time partitioning granularities, and the column
// types each may partition (DATE has no hours).
var partitionTypes = map[string][]string{
	"HOUR":  {typeTimestamp, typeDatetime},
	"DAY":   {typeTimestamp, typeDate, typeDatetime},
	"MONTH": {typeTimestamp, typeDate, typeDatetime},
	"YEAR":  {typeTimestamp, typeDate, typeDatetime},
}

// clusterTypes are the column types BigQuery clusters by
// (https://cloud.google.com/bigquery/docs/clustered-tables#cluster_column_types):
// not FLOAT64, BYTES, JSON, TIME, RECORD or a REPEATED column.
var clusterTypes = map[string]bool{
	typeString: true, typeInteger: true, typeNumeric: true, typeBigNumeric: true, typeBoolean: true,
	typeDate: true, typeDatetime: true, typeTimestamp: true, typeGeography: true,
}

// checkTableSpec validates a table's time partitioning and clustering
// against its (normalized) schema as tables.insert does, normalizing the
// partitioning type's case.
func checkTableSpec(t *bq.Table) error {
	var fields []*bq.TableFieldSchema
	if t.Schema != nil {
		fields = t.Schema.Fields
	}
	if tp := t.TimePartitioning; tp != nil {
		typ := strings.ToUpper(tp.Type)
		if typ == "" {
			typ = "DAY"
		}
		allowed, ok := partitionTypes[typ]
		if !ok {
			return invalidf("Invalid value for type: %s is not a valid value", tp.Type)
		}
		if tp.ExpirationMs < 0 {
			return invalidf("Invalid value for timePartitioning.expirationMs: %d", tp.ExpirationMs)
		}
		c := *tp
		c.Type = typ
		t.TimePartitioning = &c
		if tp.Field != "" {
			f := findField(fields, tp.Field)
			switch {
			case f == nil:
				return invalidf("The field specified for time partitioning cannot be found in the schema: %s", tp.Field)
			case f.Mode == modeRepeated || !slices.Contains(allowed, f.Type):
				if !slices.Contains(partitionTypes["DAY"], f.Type) || f.Mode == modeRepeated {
					return invalidf("The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: %s.", shapeOf(f))
				}
				return invalidf("%s partitioning is not supported on field %s of type %s.", typ, f.Name, f.Type)
			}
		}
	}
	if t.RequirePartitionFilter && t.TimePartitioning == nil && t.RangePartitioning == nil {
		return invalidf("Cannot set requirePartitionFilter on a table without partitioning.")
	}
	if cl := t.Clustering; cl != nil {
		if len(cl.Fields) > maxClusteringFields {
			return invalidf("Too many clustering fields: %d, only %d are allowed.", len(cl.Fields), maxClusteringFields)
		}
		seen := map[string]bool{}
		for _, name := range cl.Fields {
			f := findField(fields, name)
			switch {
			case f == nil:
				return invalidf("The field specified for clustering cannot be found in the schema. Invalid field: %s.", name)
			case seen[strings.ToLower(name)]:
				return invalidf("Duplicate clustering field: %s.", name)
			case f.Mode == modeRepeated || !clusterTypes[f.Type]:
				return invalidf("Field %s is of type %s, which is not supported for clustering.", f.Name, shapeOf(f))
			}
			seen[strings.ToLower(name)] = true
		}
	}
	return nil
}

// patchTableSpec applies what a tables.patch changes of the spec: the
// partition expiration, the clustering and require_partition_filter may
// change; the partitioning column and granularity may not.
func patchTableSpec(next, in *bq.Table) error {
	if tp := in.TimePartitioning; tp != nil {
		cur := next.TimePartitioning
		if cur == nil || (tp.Type != "" && !strings.EqualFold(tp.Type, cur.Type)) || (tp.Field != "" && tp.Field != cur.Field) {
			return invalidf("Cannot change partitioning spec of table %s.", next.Id)
		}
		c := *cur
		c.ExpirationMs = tp.ExpirationMs
		next.TimePartitioning = &c
	}
	if in.Clustering != nil {
		next.Clustering = in.Clustering
	}
	if in.RequirePartitionFilter {
		next.RequirePartitionFilter = true
	}
	return checkTableSpec(next)
}

func shapeOf(f *bq.TableFieldSchema) string {
	if f.Mode == modeRepeated {
		return "REPEATED " + f.Type
	}
	return f.Type
}
