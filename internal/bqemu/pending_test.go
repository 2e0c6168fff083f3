package bqemu

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The answers below follow what Google documents for the Storage Write
// API's application-created streams:
//   - PENDING streams: rows are invisible until the stream is finalized and
//     committed; BatchCommitWriteStreams commits streams of one table
//     atomically (https://cloud.google.com/bigquery/docs/write-api#pending_type,
//     https://cloud.google.com/bigquery/docs/write-api-batch).
//   - Offsets: an append at an offset already written answers
//     ALREADY_EXISTS, one beyond the end OUT_OF_RANGE
//     (https://cloud.google.com/bigquery/docs/write-api#exactly-once,
//     https://cloud.google.com/bigquery/docs/reference/storage/rpc/google.cloud.bigquery.storage.v1#appendrowsrequest).
//   - BatchCommitWriteStreams answers problems as stream_errors with no
//     commit_time, committing none of the streams; FinalizeWriteStream
//     returns the row count and ends appends; GetWriteStream shows the
//     commit_time once committed
//     (https://cloud.google.com/bigquery/docs/reference/storage/rpc/google.cloud.bigquery.storage.v1#bigquerywrite).

// pendingStream opens a PENDING stream on table d.<table> (created if
// needed) with schema id INT64, name STRING.
func pendingStream(t *testing.T, e *Emulator, mw *managedwriter.Client, table string) (*managedwriter.ManagedStream, func(ids ...int) [][]byte) {
	t.Helper()
	return simpleWriter(t, e, mw, table, managedwriter.WithType(managedwriter.PendingStream))
}

func commit(t *testing.T, mw *managedwriter.Client, table string, streams ...string) (*storagepb.BatchCommitWriteStreamsResponse, error) {
	t.Helper()
	return mw.BatchCommitWriteStreams(context.Background(), &storagepb.BatchCommitWriteStreamsRequest{
		Parent: managedwriter.TableParentFromParts(testProject, "d", table), WriteStreams: streams})
}

func TestBatchCommitIsAllOrNothingPerTable(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	mw := writerClient(t, addrs)
	ctx := context.Background()
	a, rows := pendingStream(t, e, mw, "atomic")
	b, _ := pendingStream(t, e, mw, "atomic")
	for _, w := range []*managedwriter.ManagedStream{a, b} {
		if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(1, 2)}, managedwriter.WithOffset(0))[0]); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if _, err := a.Finalize(ctx); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	// b is not finalized: the commit of both is refused, a's rows included.
	resp, err := commit(t, mw, "atomic", a.StreamName(), b.StreamName())
	if err != nil || resp.GetCommitTime() != nil || len(resp.GetStreamErrors()) != 1 ||
		resp.GetStreamErrors()[0].GetEntity() != b.StreamName() {
		t.Fatalf("commit with an unfinalized stream: %v, %v; want one stream error for %s and no commit time", resp, err, b.StreamName())
	}
	if n := len(rowIDs(t, e, "d", "atomic")); n != 0 {
		t.Fatalf("%d rows visible after a refused commit, want 0", n)
	}
	if got, err := b.Finalize(ctx); err != nil || got != 2 {
		t.Fatalf("Finalize: %d rows, %v; want 2", got, err)
	}
	if resp, err := commit(t, mw, "atomic", a.StreamName(), b.StreamName()); err != nil || resp.GetCommitTime() == nil {
		t.Fatalf("commit: %v, %v", resp, err)
	}
	if ids := rowIDs(t, e, "d", "atomic"); !slices.Equal(ids, []int64{1, 2, 1, 2}) {
		t.Fatalf("rows %v after commit, want both streams' [1 2 1 2]", ids)
	}
	// An append to a finalized stream is refused (STREAM_FINALIZED).
	_, _, err = waitResult(t, appendAll(t, a, [][][]byte{rows(3)}, managedwriter.WithOffset(2))[0])
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("append after finalize: %v, want InvalidArgument", err)
	}
}

func TestBatchCommitRefusesStreamOfAnotherTable(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	mw := writerClient(t, addrs)
	a, rows := pendingStream(t, e, mw, "one")
	pendingStream(t, e, mw, "two") // creates table two
	if _, _, err := waitResult(t, appendAll(t, a, [][][]byte{rows(1)})[0]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := a.Finalize(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := commit(t, mw, "two", a.StreamName())
	if err != nil || resp.GetCommitTime() != nil || len(resp.GetStreamErrors()) != 1 {
		t.Fatalf("commit under another table: %v, %v; want a stream error", resp, err)
	}
	if n := len(rowIDs(t, e, "d", "one")) + len(rowIDs(t, e, "d", "two")); n != 0 {
		t.Fatalf("%d rows committed, want 0", n)
	}
}

func TestFailedCommitCommitsNothingAndRetryCommitsOnce(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	mw := writerClient(t, addrs)
	w, rows := pendingStream(t, e, mw, "retry")
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(1, 2, 3)})[0]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := w.Finalize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.SetFaults(Faults{CommitNext: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := commit(t, mw, "retry", w.StreamName()); status.Code(err) != codes.Internal {
		t.Fatalf("commit with a fault: %v, want Internal", err)
	}
	if n := len(rowIDs(t, e, "d", "retry")); n != 0 {
		t.Fatalf("%d rows after a failed commit, want 0", n)
	}
	if resp, err := commit(t, mw, "retry", w.StreamName()); err != nil || resp.GetCommitTime() == nil {
		t.Fatalf("retried commit: %v, %v", resp, err)
	}
	// A commit repeated because its answer was lost says the stream is
	// committed already, which is how a client tells it succeeded.
	resp, err := commit(t, mw, "retry", w.StreamName())
	if err != nil || len(resp.GetStreamErrors()) != 1 || resp.GetStreamErrors()[0].GetCode() != storagepb.StorageError_STREAM_ALREADY_COMMITTED {
		t.Fatalf("third commit: %v, %v; want STREAM_ALREADY_COMMITTED", resp, err)
	}
	if ids := rowIDs(t, e, "d", "retry"); !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("rows %v, want [1 2 3] once", ids)
	}
}

func TestGetWriteStreamShowsPendingThenCommitted(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	mw := writerClient(t, addrs)
	w, rows := pendingStream(t, e, mw, "get")
	get := func() *storagepb.WriteStream {
		ws, err := mw.GetWriteStream(context.Background(), &storagepb.GetWriteStreamRequest{Name: w.StreamName()})
		if err != nil {
			t.Fatalf("GetWriteStream: %v", err)
		}
		return ws
	}
	if ws := get(); ws.GetType() != storagepb.WriteStream_PENDING || ws.GetCommitTime() != nil {
		t.Fatalf("new stream: type %v, commit time %v; want PENDING, none", ws.GetType(), ws.GetCommitTime())
	}
	waitResult(t, appendAll(t, w, [][][]byte{rows(1)})[0])
	w.Finalize(context.Background())
	if _, err := commit(t, mw, "get", w.StreamName()); err != nil {
		t.Fatal(err)
	}
	if ws := get(); ws.GetCommitTime() == nil {
		t.Fatal("committed stream has no commit time")
	}
	_, err := mw.GetWriteStream(context.Background(), &storagepb.GetWriteStreamRequest{Name: w.StreamName() + "x"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown stream: %v, want NotFound", err)
	}
}

// The query the BigQuery sink runs in exactly-once mode, through Google's
// client (jobs.query): committed rows only, grouped per partition.
func TestMaxOffsetQuerySeesCommittedRowsOnly(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	ctx := context.Background()
	createTable(t, e, "d", "unused", eventSchema()[:1]) // creates dataset d
	client := restClient(t, "http://"+addrs.REST)
	tbl := client.Dataset("d").Table("eos")
	if err := tbl.Create(ctx, &bigquery.TableMetadata{Schema: bigquery.Schema{
		{Name: "_sluice_topic", Type: bigquery.StringFieldType},
		{Name: "_sluice_partition", Type: bigquery.IntegerFieldType},
		{Name: "_sluice_offset", Type: bigquery.IntegerFieldType},
	}}); err != nil {
		t.Fatal(err)
	}
	mw := writerClient(t, addrs)
	schema, _ := e.cat.table(tableKey{testProject, "d", "eos"})
	fields, _ := schema.schema()
	md, dp := writerSchema(t, fields)
	open := func(typ managedwriter.StreamType) *managedwriter.ManagedStream {
		w, err := mw.NewManagedStream(ctx, managedwriter.WithType(typ),
			managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(testProject, "d", "eos")), managedwriter.WithSchemaDescriptor(dp))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	row := func(topic string, p, o int) []byte {
		return encodeRow(t, md, map[string]any{"_sluice_topic": topic, "_sluice_partition": p, "_sluice_offset": o})
	}
	committed := open(managedwriter.DefaultStream)
	waitResult(t, appendAll(t, committed, [][][]byte{{row("a", 0, 5), row("a", 0, 9), row("a", 1, 3), row("b", 0, 100)}})[0])
	pending := open(managedwriter.PendingStream)
	waitResult(t, appendAll(t, pending, [][][]byte{{row("a", 0, 50)}})[0])

	read := func() map[int64]int64 {
		q := client.Query("SELECT _sluice_partition, MAX(_sluice_offset) FROM `p.d.eos` WHERE _sluice_topic = @topic GROUP BY _sluice_partition")
		q.Parameters = []bigquery.QueryParameter{{Name: "topic", Value: "a"}}
		it, err := q.Read(ctx)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		got := map[int64]int64{}
		for {
			var r []bigquery.Value
			err := it.Next(&r)
			if err == iterator.Done {
				return got
			}
			if err != nil {
				t.Fatalf("reading query rows: %v", err)
			}
			got[r[0].(int64)] = r[1].(int64)
		}
	}
	q := client.Query("SELECT _sluice_partition, MAX(_sluice_offset) FROM `p.d.eos` WHERE _sluice_topic = @topic GROUP BY _sluice_partition")
	q.Parameters = []bigquery.QueryParameter{{Name: "topic", Value: "none"}}
	if it, err := q.Read(ctx); err != nil || it.Next(&[]bigquery.Value{}) != iterator.Done {
		t.Fatalf("query of a topic without rows: %v; want no rows", err)
	}
	if got := read(); len(got) != 2 || got[0] != 9 || got[1] != 3 {
		t.Fatalf("max offsets %v, want map[0:9 1:3] (pending rows invisible, topic b apart)", got)
	}
	pending.Finalize(ctx)
	if _, err := commit(t, mw, "eos", pending.StreamName()); err != nil {
		t.Fatal(err)
	}
	if got := read(); got[0] != 50 {
		t.Fatalf("after commit max offsets %v, want partition 0 at 50", got)
	}
	_, err := client.Query("SELECT * FROM `p.d.eos`").Read(ctx)
	wantAPIError(t, "another query", err, http.StatusBadRequest, "invalidQuery")
}
