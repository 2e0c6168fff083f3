package bqemu

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"cloud.google.com/go/bigquery/storage/managedwriter"
)

func TestSQLiteStorageSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bq.db")
	ctx := context.Background()
	schema := eventSchema()

	write := func(e *Emulator, addrs Addrs, ids ...int) {
		t.Helper()
		md, dp := writerSchema(t, schema)
		w, err := writerClient(t, addrs).NewManagedStream(ctx,
			managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(testProject, "d", "kept")),
			managedwriter.WithSchemaDescriptor(dp))
		if err != nil {
			t.Fatalf("NewManagedStream: %v", err)
		}
		defer w.Close()
		var batch [][]byte
		for _, id := range ids {
			batch = append(batch, encodeRow(t, md, map[string]any{
				"id": id, "tags": []any{"x"}, "addr": map[string]any{"city": "Brest", "zip": 29200},
			}))
		}
		if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{batch})[0]); err != nil {
			t.Fatalf("append: %v", err)
		}
	}

	first, addrs := startEmulator(t, Options{DBPath: path})
	createTable(t, first, "d", "kept", schema)
	write(first, addrs, 1, 2, 3)
	before, err := first.Rows(ctx, testProject, "d", "kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second, addrs := startEmulator(t, Options{DBPath: path})
	after, err := second.Rows(ctx, testProject, "d", "kept")
	if err != nil {
		t.Fatalf("Rows after reopen: %v", err)
	}
	if len(after) != 3 || !slices.EqualFunc(before, after, func(a, b map[string]any) bool { return equalValue(a, b) }) {
		t.Fatalf("after reopen rows %v, want %v", after, before)
	}
	meta, err := second.cat.tableResource(tableKey{testProject, "d", "kept"})
	if err != nil || meta.NumRows != 3 || len(meta.Schema.Fields) != len(schema) {
		t.Fatalf("table after reopen: %+v, %v", meta, err)
	}
	// Numbering continues where it stopped.
	write(second, addrs, 4)
	if ids := rowIDs(t, second, "d", "kept"); !slices.Equal(ids, []int64{1, 2, 3, 4}) {
		t.Fatalf("rows %v, want [1 2 3 4]", ids)
	}
}
