package bqemu

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

func restClient(t *testing.T, endpoint string) *bigquery.Client {
	t.Helper()
	c, err := bigquery.NewClient(context.Background(), testProject,
		option.WithEndpoint(endpoint), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("bigquery.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantAPIError(t *testing.T, what string, err error, code int, reason string) {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != code || len(ge.Errors) == 0 || ge.Errors[0].Reason != reason {
		t.Fatalf("%s: %v, want HTTP %d %s", what, err, code, reason)
	}
}

func TestRESTWithBigQueryClient(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	// The client drops BigQuery's base path when given a bare endpoint, and
	// keeps it when the endpoint has it: both must work.
	for _, tc := range []struct{ name, endpoint string }{
		{"bare", "http://" + addrs.REST},
		{"basepath", "http://" + addrs.REST + "/bigquery/v2/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			client := restClient(t, tc.endpoint)
			ds := client.Dataset("ds_" + tc.name)
			if err := ds.Create(ctx, &bigquery.DatasetMetadata{Location: "EU"}); err != nil {
				t.Fatalf("create dataset: %v", err)
			}
			wantAPIError(t, "create dataset again", ds.Create(ctx, nil), http.StatusConflict, "duplicate")

			schema := bigquery.Schema{
				{Name: "id", Type: bigquery.IntegerFieldType, Required: true},
				{Name: "tags", Type: bigquery.StringFieldType, Repeated: true},
				{Name: "addr", Type: bigquery.RecordFieldType, Schema: bigquery.Schema{
					{Name: "city", Type: bigquery.StringFieldType, Required: true},
					{Name: "zip", Type: bigquery.IntegerFieldType},
				}},
				{Name: "items", Type: bigquery.RecordFieldType, Repeated: true, Schema: bigquery.Schema{
					{Name: "sku", Type: bigquery.StringFieldType},
					{Name: "qty", Type: bigquery.IntegerFieldType},
				}},
				{Name: "ts", Type: bigquery.TimestampFieldType},
				{Name: "day", Type: bigquery.DateFieldType},
			}
			tbl := ds.Table("events")
			if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
				t.Fatalf("create table: %v", err)
			}
			wantAPIError(t, "create table again", tbl.Create(ctx, &bigquery.TableMetadata{Schema: schema}), http.StatusConflict, "duplicate")
			_, err := ds.Table("missing").Metadata(ctx)
			wantAPIError(t, "metadata of a missing table", err, http.StatusNotFound, "notFound")
			_, err = client.Dataset("nope").Metadata(ctx)
			wantAPIError(t, "metadata of a missing dataset", err, http.StatusNotFound, "notFound")

			md, err := tbl.Metadata(ctx)
			if err != nil {
				t.Fatalf("table metadata: %v", err)
			}
			if !schemaEqual(md.Schema, schema) || md.Location != "EU" || md.NumRows != 0 || md.Type != bigquery.RegularTable {
				t.Fatalf("metadata: schema %v, location %q, rows %d, type %q", md.Schema, md.Location, md.NumRows, md.Type)
			}

			// Rows arrive through the Storage Write API, as the sink writes them.
			ts := time.Date(2023, 1, 2, 3, 4, 5, 600000000, time.UTC)
			msgDesc, dp := writerSchema(t, e.mustSchema(t, ds.DatasetID, "events"))
			w, err := writerClient(t, addrs).NewManagedStream(ctx,
				managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(testProject, ds.DatasetID, "events")),
				managedwriter.WithSchemaDescriptor(dp))
			if err != nil {
				t.Fatalf("NewManagedStream: %v", err)
			}
			defer w.Close()
			var batch [][]byte
			for id := range 5 {
				batch = append(batch, encodeRow(t, msgDesc, map[string]any{
					"id": id, "tags": []any{"a", "b"}, "ts": ts.UnixMicro(), "day": 19000 + id,
					"addr":  map[string]any{"city": "Nantes"},
					"items": []any{map[string]any{"sku": "s1", "qty": 1}, map[string]any{"sku": "s2"}},
				}))
			}
			if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{batch})[0]); err != nil {
				t.Fatalf("append: %v", err)
			}

			// Schema evolution: add a NULLABLE column; a REQUIRED one is refused.
			grown := append(slices.Clone(md.Schema), &bigquery.FieldSchema{Name: "note", Type: bigquery.StringFieldType})
			md2, err := tbl.Update(ctx, bigquery.TableMetadataToUpdate{Schema: grown}, md.ETag)
			if err != nil {
				t.Fatalf("patch schema: %v", err)
			}
			if len(md2.Schema) != len(schema)+1 || md2.NumRows != 5 {
				t.Fatalf("after patch: %d columns, %d rows", len(md2.Schema), md2.NumRows)
			}
			required := append(slices.Clone(grown), &bigquery.FieldSchema{Name: "must", Type: bigquery.StringFieldType, Required: true})
			_, err = tbl.Update(ctx, bigquery.TableMetadataToUpdate{Schema: required}, "")
			wantAPIError(t, "adding a REQUIRED column", err, http.StatusBadRequest, "invalid")
			_, err = tbl.Update(ctx, bigquery.TableMetadataToUpdate{Description: "x"}, md.ETag)
			wantAPIError(t, "patch with a stale etag", err, http.StatusPreconditionFailed, "conditionNotMet")

			// tabledata.list through the client's RowIterator, two rows a page.
			it := tbl.Read(ctx)
			it.PageInfo().MaxSize = 2
			var got [][]bigquery.Value
			for {
				var row []bigquery.Value
				err := it.Next(&row)
				if err == iterator.Done {
					break
				}
				if err != nil {
					t.Fatalf("reading rows: %v", err)
				}
				got = append(got, row)
			}
			if len(got) != 5 || it.TotalRows != 5 {
				t.Fatalf("read %d rows (total %d), want 5", len(got), it.TotalRows)
			}
			row := got[3]
			want := []bigquery.Value{
				int64(3), []bigquery.Value{"a", "b"}, []bigquery.Value{"Nantes", nil},
				[]bigquery.Value{[]bigquery.Value{"s1", int64(1)}, []bigquery.Value{"s2", nil}},
				ts, civil.DateOf(time.Unix(19003*86400, 0).UTC()), nil,
			}
			if !valuesEqual(row, want) {
				t.Fatalf("row 3 = %#v\nwant %#v", row, want)
			}

			var names []string
			tit := ds.Tables(ctx)
			for {
				tb, err := tit.Next()
				if err == iterator.Done {
					break
				}
				if err != nil {
					t.Fatalf("listing tables: %v", err)
				}
				names = append(names, tb.TableID)
			}
			if !slices.Equal(names, []string{"events"}) {
				t.Fatalf("tables %v, want [events]", names)
			}
			if err := ds.DeleteWithContents(ctx); err != nil {
				t.Fatalf("deleting dataset: %v", err)
			}
			_, err = tbl.Metadata(ctx)
			wantAPIError(t, "metadata after dataset delete", err, http.StatusNotFound, "notFound")
		})
	}
}

func (e *Emulator) mustSchema(t *testing.T, dataset, table string) []*bq.TableFieldSchema {
	t.Helper()
	ts, err := e.cat.table(tableKey{testProject, dataset, table})
	if err != nil {
		t.Fatal(err)
	}
	fields, _ := ts.schema()
	return fields
}

func schemaEqual(a, b bigquery.Schema) bool {
	return slices.EqualFunc(a, b, func(x, y *bigquery.FieldSchema) bool {
		return x.Name == y.Name && x.Type == y.Type && x.Required == y.Required &&
			x.Repeated == y.Repeated && schemaEqual(x.Schema, y.Schema)
	})
}

func valuesEqual(a, b []bigquery.Value) bool {
	return slices.EqualFunc(a, b, func(x, y bigquery.Value) bool {
		switch xv := x.(type) {
		case []bigquery.Value:
			yv, ok := y.([]bigquery.Value)
			return ok && valuesEqual(xv, yv)
		case time.Time:
			yv, ok := y.(time.Time)
			return ok && xv.Equal(yv)
		}
		return x == y
	})
}
