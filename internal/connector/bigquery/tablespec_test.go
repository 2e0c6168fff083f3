package bigquery

import (
	"context"
	"strings"
	"testing"
	"time"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/api/option"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// tableMetadata reads a table through Google's client library, as a user
// would.
func tableMetadata(t *testing.T, addrs bqemu.Addrs, table string) *bq.TableMetadata {
	t.Helper()
	ctx := context.Background()
	c, err := bq.NewClient(ctx, testProject, option.WithEndpoint("http://"+addrs.REST), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.Dataset(testDataset).Table(table).Metadata(ctx)
	if err != nil {
		t.Fatalf("reading table %s: %v", table, err)
	}
	return md
}

func TestCreatedTablesArePartitionedAndClusteredAsConfigured(t *testing.T) {
	e, addrs := startEmulator(t, bqemu.Faults{})
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.TimePartitioning = &config.BigQueryTimePartitioning{Field: "at", Type: "HOUR", Expiration: 90 * 24 * time.Hour}
	cfg.Clustering = []string{"customer", "id"}
	cfg.RequirePartitionFilter = true
	cfg.Description = "purchases from Kafka"
	cfg.Labels = map[string]string{"team": "payments", "source": "kafka"}
	s := newSink(t, cfg)
	if bad := write(t, s, []*connector.Record{purchase(purchaseSchema(1), 1, nil), purchase(purchaseSchema(1), 2, nil)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	md := tableMetadata(t, addrs, "purchases")
	tp := md.TimePartitioning
	if tp == nil || tp.Type != bq.HourPartitioningType || tp.Field != "at" || tp.Expiration != 90*24*time.Hour {
		t.Fatalf("time partitioning = %+v, want HOUR on at, expiring after 2160h", tp)
	}
	if md.Clustering == nil || strings.Join(md.Clustering.Fields, ",") != "customer,id" {
		t.Fatalf("clustering = %+v, want customer,id", md.Clustering)
	}
	if !md.RequirePartitionFilter || md.Description != "purchases from Kafka" ||
		md.Labels["team"] != "payments" || md.Labels["source"] != "kafka" {
		t.Fatalf("require_partition_filter %v, description %q, labels %v; want true, the description, both labels",
			md.RequirePartitionFilter, md.Description, md.Labels)
	}
	if ids := countIDs(t, e, "purchases"); len(ids) != 2 {
		t.Fatalf("ids = %v, want 1 and 2", ids)
	}
}

// TestInvalidTableSpecsAreRefusedAsBigQueryDoes: tables.insert refuses what
// BigQuery refuses, and the sink makes the records of such a table bad
// input with BigQuery's reason.
func TestInvalidTableSpecsAreRefusedAsBigQueryDoes(t *testing.T) {
	_, addrs := startEmulator(t, bqemu.Faults{})
	ctx := context.Background()
	c, err := bq.NewClient(ctx, testProject, option.WithEndpoint("http://"+addrs.REST), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Dataset(testDataset).Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	schema := bq.Schema{
		{Name: "a", Type: bq.StringFieldType}, {Name: "b", Type: bq.IntegerFieldType}, {Name: "c", Type: bq.StringFieldType},
		{Name: "d", Type: bq.StringFieldType}, {Name: "e", Type: bq.StringFieldType}, {Name: "f", Type: bq.FloatFieldType},
		{Name: "day", Type: bq.DateFieldType}, {Name: "tags", Type: bq.StringFieldType, Repeated: true},
	}
	for _, tc := range []struct {
		name string
		md   bq.TableMetadata
		want string
	}{
		{"five clustering columns", bq.TableMetadata{Clustering: &bq.Clustering{Fields: []string{"a", "b", "c", "d", "e"}}}, "Too many clustering fields: 5, only 4 are allowed"},
		{"clustering by FLOAT", bq.TableMetadata{Clustering: &bq.Clustering{Fields: []string{"f"}}}, "not supported for clustering"},
		{"clustering by an array", bq.TableMetadata{Clustering: &bq.Clustering{Fields: []string{"tags"}}}, "not supported for clustering"},
		{"clustering by a missing column", bq.TableMetadata{Clustering: &bq.Clustering{Fields: []string{"zz"}}}, "cannot be found"},
		{"partitioned by STRING", bq.TableMetadata{TimePartitioning: &bq.TimePartitioning{Field: "a"}}, "can only be of type TIMESTAMP, DATE or DATETIME"},
		{"a DATE by the hour", bq.TableMetadata{TimePartitioning: &bq.TimePartitioning{Field: "day", Type: bq.HourPartitioningType}}, "HOUR partitioning is not supported"},
		{"partitioned by a missing column", bq.TableMetadata{TimePartitioning: &bq.TimePartitioning{Field: "zz"}}, "cannot be found"},
		{"a partition filter without partitions", bq.TableMetadata{RequirePartitionFilter: true}, "without partitioning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := tc.md
			md.Schema = schema
			err := c.Dataset(testDataset).Table("t").Create(ctx, &md)
			if httpCode(err) != 400 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("creating the table = %v, want a 400 saying %q", err, tc.want)
			}
		})
	}

	// Through the sink: the partition column is not in the records.
	cfg := sinkConfig(addrs, "{{.Topic}}")
	cfg.TimePartitioning = &config.BigQueryTimePartitioning{Field: "created_at", Type: "DAY"}
	s := newSink(t, cfg)
	bad := write(t, s, []*connector.Record{purchase(purchaseSchema(1), 1, nil)})
	if len(bad) != 1 || bad[0].Reason != "table" || !strings.Contains(bad[0].Error(), "created_at") {
		t.Fatalf("refused = %v, want the record refused for its table's missing partition column", bad)
	}
}

func TestTypeChangeIsAPermanentErrorNamingTableFieldAndTypes(t *testing.T) {
	_, addrs := startEmulator(t, bqemu.Faults{})
	s := newSink(t, sinkConfig(addrs, "purchases"))
	if bad := write(t, s, []*connector.Record{purchase(purchaseSchema(1), 1, nil)}); len(bad) > 0 {
		t.Fatal(bad[0])
	}
	retyped := purchaseSchema(7)
	retyped.Fields[0] = connector.Field{Name: "id", Type: connector.TypeString}
	bad := write(t, s, []*connector.Record{purchase(retyped, 2, map[string]any{"id": "two"})})
	if len(bad) != 1 {
		t.Fatalf("refused = %v, want the retyped record", bad)
	}
	err := bad[0].Err
	want := "table purchases: schema com.example.PurchaseRequestEvent (id 7) changes a column's type"
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "field id: the record has STRING, the column is INTEGER") {
		t.Fatalf("error = %v (permanent %v), want a permanent error naming the table, field id and both types", err, connector.IsPermanent(err))
	}
}
