package bqemu

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const testProject = "p"

// startEmulator starts an emulator on loopback ports and closes it when
// the test ends.
func startEmulator(t testing.TB, opts Options) (*Emulator, Addrs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	addrs, err := e.Start(ctx, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, addrs
}

// writerClient is a managedwriter client pointed at the emulator, as the
// BigQuery sink will build it.
func writerClient(t testing.TB, addrs Addrs, extra ...option.ClientOption) *managedwriter.Client {
	t.Helper()
	opts := append([]option.ClientOption{
		option.WithEndpoint(addrs.GRPC),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}, extra...)
	c, err := managedwriter.NewClient(context.Background(), testProject, opts...)
	if err != nil {
		t.Fatalf("managedwriter.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventSchema exercises every mode and a nested RECORD.
func eventSchema() []*bq.TableFieldSchema {
	return []*bq.TableFieldSchema{
		{Name: "id", Type: "INT64", Mode: "REQUIRED"},
		{Name: "name", Type: "STRING"},
		{Name: "score", Type: "FLOAT64"},
		{Name: "ok", Type: "BOOL"},
		{Name: "ts", Type: "TIMESTAMP"},
		{Name: "payload", Type: "JSON"},
		{Name: "tags", Type: "STRING", Mode: "REPEATED"},
		{Name: "addr", Type: "RECORD", Fields: []*bq.TableFieldSchema{
			{Name: "city", Type: "STRING", Mode: "REQUIRED"},
			{Name: "zip", Type: "INTEGER"},
		}},
		{Name: "items", Type: "STRUCT", Mode: "REPEATED", Fields: []*bq.TableFieldSchema{
			{Name: "sku", Type: "STRING"},
			{Name: "qty", Type: "INT64"},
		}},
	}
}

func createTable(t testing.TB, e *Emulator, dataset, table string, schema []*bq.TableFieldSchema) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.cat.dataset(datasetKey{testProject, dataset}); err != nil {
		if err := e.CreateDataset(ctx, testProject, dataset); err != nil {
			t.Fatalf("CreateDataset: %v", err)
		}
	}
	if err := e.CreateTable(ctx, testProject, dataset, table, schema); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return managedwriter.TableParentFromParts(testProject, dataset, table)
}

// writerSchema derives the writer's proto schema from a table schema the
// way managedwriter users do (adapt), returning the message descriptor
// to build rows with and its normalized form to send.
func writerSchema(t testing.TB, schema []*bq.TableFieldSchema) (protoreflect.MessageDescriptor, *descriptorpb.DescriptorProto) {
	t.Helper()
	fields, err := normalizeFields(schema, "")
	if err != nil {
		t.Fatalf("normalizeFields: %v", err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(toStorageSchema(fields), "root")
	if err != nil {
		t.Fatalf("StorageSchemaToProto2Descriptor: %v", err)
	}
	md := d.(protoreflect.MessageDescriptor)
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		t.Fatalf("NormalizeDescriptor: %v", err)
	}
	return md, dp
}

// encodeRow builds a serialized row; values are Go scalars, map[string]any
// for messages and []any for repeated fields.
func encodeRow(t testing.TB, md protoreflect.MessageDescriptor, vals map[string]any) []byte {
	t.Helper()
	// Partial: tests send rows missing REQUIRED fields on purpose.
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(buildMessage(t, md, vals).Interface())
	if err != nil {
		t.Fatalf("marshal row: %v", err)
	}
	return b
}

func buildMessage(t testing.TB, md protoreflect.MessageDescriptor, vals map[string]any) protoreflect.Message {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	for name, v := range vals {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			t.Fatalf("no field %q in %s", name, md.FullName())
		}
		if list, ok := v.([]any); ok {
			l := m.Mutable(fd).List()
			for _, x := range list {
				l.Append(protoValue(t, m, fd, x))
			}
			continue
		}
		m.Set(fd, protoValue(t, m, fd, v))
	}
	return m
}

func protoValue(t testing.TB, parent protoreflect.Message, fd protoreflect.FieldDescriptor, v any) protoreflect.Value {
	t.Helper()
	if sub, ok := v.(map[string]any); ok {
		return protoreflect.ValueOfMessage(buildMessage(t, fd.Message(), sub))
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(int32(v.(int)))
	case protoreflect.Int64Kind:
		switch n := v.(type) {
		case int:
			return protoreflect.ValueOfInt64(int64(n))
		case int64:
			return protoreflect.ValueOfInt64(n)
		}
	}
	return protoreflect.ValueOf(v)
}

// appendAll appends batches through w and waits for every result.
func appendAll(t *testing.T, w *managedwriter.ManagedStream, batches [][][]byte, opts ...managedwriter.AppendOption) []*managedwriter.AppendResult {
	t.Helper()
	ctx := context.Background()
	var results []*managedwriter.AppendResult
	for _, b := range batches {
		r, err := w.AppendRows(ctx, b, opts...)
		if err != nil {
			t.Fatalf("AppendRows: %v", err)
		}
		results = append(results, r)
	}
	return results
}

func waitResult(t testing.TB, r *managedwriter.AppendResult) (*storagepb.AppendRowsResponse, int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := r.GetResult(ctx)
	resp, _ := r.FullResponse(ctx)
	return resp, off, err
}

func rowIDs(t *testing.T, e *Emulator, dataset, table string) []int64 {
	t.Helper()
	rows, err := e.Rows(context.Background(), testProject, dataset, table)
	if err != nil {
		t.Fatalf("Rows(%s.%s): %v", dataset, table, err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r["id"].(int64)
	}
	return ids
}

func newTableWithSchema(fields []*bq.TableFieldSchema) *bq.Table {
	return &bq.Table{Schema: &bq.TableSchema{Fields: fields}}
}

func tableID(i int) string { return fmt.Sprintf("t%03d", i) }
