package bqemu

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestDefaultStreamAppendsLandOnce(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	table := createTable(t, e, "d", "events", eventSchema())
	md, dp := writerSchema(t, eventSchema())
	mw := writerClient(t, addrs)
	w, err := mw.NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()

	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var batches [][][]byte
	for b := range 10 {
		var batch [][]byte
		for i := range 100 {
			id := b*100 + i
			batch = append(batch, encodeRow(t, md, map[string]any{
				"id": id, "name": "n", "score": 1.5, "ok": true, "ts": ts.UnixMicro(),
				"payload": `{"k":[1,2]}`, "tags": []any{"a", "b"},
				"addr":  map[string]any{"city": "Lyon", "zip": 69000},
				"items": []any{map[string]any{"sku": "x", "qty": 2}},
			}))
		}
		batches = append(batches, batch)
	}
	for _, r := range appendAll(t, w, batches) {
		_, off, err := waitResult(t, r)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if off != managedwriter.NoStreamOffset {
			t.Errorf("default stream reported offset %d, want none", off)
		}
	}
	ids := rowIDs(t, e, "d", "events")
	if len(ids) != 1000 {
		t.Fatalf("got %d rows, want 1000", len(ids))
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("row %d has id %d: rows out of order or duplicated", i, id)
		}
	}
	rows, _ := e.Rows(context.Background(), testProject, "d", "events")
	got := rows[0]
	want := map[string]any{
		"id": int64(0), "name": "n", "score": 1.5, "ok": true, "ts": ts, "payload": `{"k":[1,2]}`,
		"tags":  []any{"a", "b"},
		"addr":  map[string]any{"city": "Lyon", "zip": int64(69000)},
		"items": []any{map[string]any{"sku": "x", "qty": int64(2)}},
	}
	for k, v := range want {
		if !equalValue(got[k], v) {
			t.Errorf("column %s = %#v, want %#v", k, got[k], v)
		}
	}
	if s := e.Stats(); s.RowsByTable["p.d.events"] != 1000 || s.Appends != 10 {
		t.Errorf("stats: rows %d appends %d, want 1000 and 10", s.RowsByTable["p.d.events"], s.Appends)
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equalValue)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalValue(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestPendingStreamRowsVisibleOnlyAfterCommit(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	schema := eventSchema()[:2]
	table := createTable(t, e, "d", "pending", schema)
	md, dp := writerSchema(t, schema)
	mw := writerClient(t, addrs)
	ctx := context.Background()
	w, err := mw.NewManagedStream(ctx, managedwriter.WithDestinationTable(table),
		managedwriter.WithType(managedwriter.PendingStream), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	rows := func(ids ...int) [][]byte {
		var out [][]byte
		for _, id := range ids {
			out = append(out, encodeRow(t, md, map[string]any{"id": id}))
		}
		return out
	}
	for _, step := range []struct {
		ids    []int
		offset int64
		code   codes.Code
	}{
		{[]int{1, 2}, 0, codes.OK},
		{[]int{3, 4}, 2, codes.OK},
		{[]int{3, 4}, 2, codes.AlreadyExists}, // a retry of a write that landed
		{[]int{9}, 7, codes.OutOfRange},
	} {
		r := appendAll(t, w, [][][]byte{rows(step.ids...)}, managedwriter.WithOffset(step.offset))[0]
		_, off, err := waitResult(t, r)
		if status.Code(err) != step.code {
			t.Fatalf("append at %d: got %v, want code %v", step.offset, err, step.code)
		}
		if err == nil && off != step.offset {
			t.Errorf("append at %d: result offset %d", step.offset, off)
		}
	}
	if n := len(rowIDs(t, e, "d", "pending")); n != 0 {
		t.Fatalf("%d rows visible before commit, want 0", n)
	}
	count, err := w.Finalize(ctx)
	if err != nil || count != 4 {
		t.Fatalf("Finalize: %d, %v; want 4 rows", count, err)
	}
	resp, err := mw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{
		Parent: table, WriteStreams: []string{w.StreamName()}})
	if err != nil || len(resp.GetStreamErrors()) > 0 || resp.GetCommitTime() == nil {
		t.Fatalf("BatchCommitWriteStreams: %v, %v", resp, err)
	}
	if ids := rowIDs(t, e, "d", "pending"); !slices.Equal(ids, []int64{1, 2, 3, 4}) {
		t.Fatalf("after commit rows %v, want [1 2 3 4]", ids)
	}
	// Committing again is refused, and rows are not doubled.
	resp, err = mw.BatchCommitWriteStreams(ctx, &storagepb.BatchCommitWriteStreamsRequest{
		Parent: table, WriteStreams: []string{w.StreamName()}})
	if err != nil || len(resp.GetStreamErrors()) != 1 || resp.GetStreamErrors()[0].GetCode() != storagepb.StorageError_STREAM_ALREADY_COMMITTED {
		t.Fatalf("second commit: %v, %v; want STREAM_ALREADY_COMMITTED", resp, err)
	}
	if n := len(rowIDs(t, e, "d", "pending")); n != 4 {
		t.Fatalf("%d rows after second commit, want 4", n)
	}
}

func TestBufferedStreamFlush(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	schema := eventSchema()[:2]
	table := createTable(t, e, "d", "buffered", schema)
	md, dp := writerSchema(t, schema)
	mw := writerClient(t, addrs)
	ctx := context.Background()
	w, err := mw.NewManagedStream(ctx, managedwriter.WithDestinationTable(table),
		managedwriter.WithType(managedwriter.BufferedStream), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	var batch [][]byte
	for id := range 5 {
		batch = append(batch, encodeRow(t, md, map[string]any{"id": id}))
	}
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{batch})[0]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if n := len(rowIDs(t, e, "d", "buffered")); n != 0 {
		t.Fatalf("%d rows visible before flush", n)
	}
	if off, err := w.FlushRows(ctx, 2); err != nil || off != 2 {
		t.Fatalf("FlushRows(2): %d, %v", off, err)
	}
	if ids := rowIDs(t, e, "d", "buffered"); !slices.Equal(ids, []int64{0, 1, 2}) {
		t.Fatalf("after flush to 2: rows %v, want [0 1 2]", ids)
	}
	if _, err := w.FlushRows(ctx, 9); status.Code(err) != codes.OutOfRange {
		t.Fatalf("FlushRows beyond the end: %v, want OutOfRange", err)
	}
}

func TestInvalidRowsFailTheWholeRequest(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	table := createTable(t, e, "d", "strict", eventSchema())
	md, dp := writerSchema(t, eventSchema())
	mw := writerClient(t, addrs)
	w, err := mw.NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	batch := [][]byte{
		encodeRow(t, md, map[string]any{"id": 1}),
		encodeRow(t, md, map[string]any{"name": "no id"}),                           // REQUIRED missing
		encodeRow(t, md, map[string]any{"id": 3, "payload": "{not json"}),           // bad JSON
		encodeRow(t, md, map[string]any{"id": 4, "addr": map[string]any{"zip": 1}}), // nested REQUIRED
		encodeRow(t, md, map[string]any{"id": 5, "ts": int64(1) << 62}),             // TIMESTAMP out of range
		{0xff, 0xff}, // not a proto message
	}
	resp, _, err := waitResult(t, appendAll(t, w, [][][]byte{batch})[0])
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("append: %v, want InvalidArgument", err)
	}
	var got []int64
	for _, re := range resp.GetRowErrors() {
		got = append(got, re.GetIndex())
		if re.GetCode() != storagepb.RowError_FIELDS_ERROR || re.GetMessage() == "" {
			t.Errorf("row error %d: %v", re.GetIndex(), re)
		}
	}
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("row errors at %v, want [1 2 3 4 5]; errors: %v", got, resp.GetRowErrors())
	}
	if msg := resp.GetRowErrors()[0].GetMessage(); !strings.Contains(msg, "id") {
		t.Errorf("row error for the missing REQUIRED id does not name it: %q", msg)
	}
	if n := len(rowIDs(t, e, "d", "strict")); n != 0 {
		t.Fatalf("%d rows stored from a failed request, want 0", n)
	}
	// The client resends the good rows, as it would after row errors.
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{batch[:1]})[0]); err != nil {
		t.Fatalf("resending the good row: %v", err)
	}
	if ids := rowIDs(t, e, "d", "strict"); !slices.Equal(ids, []int64{1}) {
		t.Fatalf("rows %v, want [1]", ids)
	}
}

func TestWriterSchemaWithExtraFieldIsRejected(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	table := createTable(t, e, "d", "narrow", eventSchema()[:1])
	md, dp := writerSchema(t, eventSchema()[:2]) // has "name", the table has not
	w, err := writerClient(t, addrs).NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	_, _, err = waitResult(t, appendAll(t, w, [][][]byte{{encodeRow(t, md, map[string]any{"id": 1})}})[0])
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "extra fields: 'name'") {
		t.Fatalf("append: %v, want InvalidArgument naming the extra field", err)
	}
}

func TestRequestOver10MBIsRejected(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	schema := eventSchema()[:2]
	table := createTable(t, e, "d", "big", schema)
	md, dp := writerSchema(t, schema)
	w, err := writerClient(t, addrs).NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dp))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	big := strings.Repeat("x", 1<<20)
	var batch [][]byte
	for id := range 11 {
		batch = append(batch, encodeRow(t, md, map[string]any{"id": id, "name": big}))
	}
	_, _, err = waitResult(t, appendAll(t, w, [][][]byte{batch})[0])
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("11 MB append: %v, want InvalidArgument", err)
	}
	if n := len(rowIDs(t, e, "d", "big")); n != 0 {
		t.Fatalf("%d rows stored from an oversize request", n)
	}
}

func TestSchemaEvolutionThroughWriter(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	v1 := eventSchema()[:2]
	table := createTable(t, e, "d", "evolving", v1)
	md1, dp1 := writerSchema(t, v1)
	w, err := writerClient(t, addrs).NewManagedStream(context.Background(),
		managedwriter.WithDestinationTable(table), managedwriter.WithSchemaDescriptor(dp1))
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	defer w.Close()
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{{encodeRow(t, md1, map[string]any{"id": 1})}})[0]); err != nil {
		t.Fatalf("append v1: %v", err)
	}
	v2 := append(v1, eventSchema()[2]) // + score FLOAT64 NULLABLE
	if _, err := e.cat.patchTable(context.Background(), tableKey{testProject, "d", "evolving"}, newTableWithSchema(v2), ""); err != nil {
		t.Fatalf("patch: %v", err)
	}
	// The stream learns of the new column from the next append's response.
	resp, _, err := waitResult(t, appendAll(t, w, [][][]byte{{encodeRow(t, md1, map[string]any{"id": 2})}})[0])
	if err != nil {
		t.Fatalf("append v1 after the patch: %v", err)
	}
	if resp.GetUpdatedSchema() == nil || len(resp.GetUpdatedSchema().GetFields()) != 3 {
		t.Errorf("first append after the patch: updated_schema %v, want the 3-column schema", resp.GetUpdatedSchema())
	}
	md2, dp2 := writerSchema(t, v2)
	r := appendAll(t, w, [][][]byte{{encodeRow(t, md2, map[string]any{"id": 3, "score": 0.5})}},
		managedwriter.UpdateSchemaDescriptor(dp2))[0]
	if _, _, err := waitResult(t, r); err != nil {
		t.Fatalf("append v2: %v", err)
	}
	rows, err := e.Rows(context.Background(), testProject, "d", "evolving")
	if err != nil || len(rows) != 3 {
		t.Fatalf("Rows: %v, %v", rows, err)
	}
	if v, ok := rows[0]["score"]; !ok || v != nil {
		t.Errorf("old row reads score %v (present %v), want NULL", v, ok)
	}
	if rows[2]["score"] != 0.5 {
		t.Errorf("new row score %v, want 0.5", rows[2]["score"])
	}
}

func TestCommittedStreamReportsOffsets(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	w, rows := simpleWriter(t, e, writerClient(t, addrs), "committed", managedwriter.WithType(managedwriter.CommittedStream))
	results := appendAll(t, w, [][][]byte{rows(1, 2, 3), rows(4), rows(5, 6)})
	for i, want := range []int64{0, 3, 4} {
		_, off, err := waitResult(t, results[i])
		if err != nil || off != want {
			t.Fatalf("append %d: offset %d, %v; want %d", i, off, err, want)
		}
	}
	// Rows of a COMMITTED stream are visible at once, before any finalize.
	if ids := rowIDs(t, e, "d", "committed"); !slices.Equal(ids, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("rows %v", ids)
	}
	if _, err := w.Finalize(context.Background()); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	_, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(7)})[0])
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("append after finalize: %v, want InvalidArgument", err)
	}
}
