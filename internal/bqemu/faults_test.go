package bqemu

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// simpleWriter returns a default-stream writer for a new two-column table.
func simpleWriter(t *testing.T, e *Emulator, mw *managedwriter.Client, table string, opts ...managedwriter.WriterOption) (*managedwriter.ManagedStream, func(ids ...int) [][]byte) {
	t.Helper()
	schema := eventSchema()[:2]
	parent := managedwriter.TableParentFromParts(testProject, "d", table)
	if _, err := e.cat.table(tableKey{testProject, "d", table}); err != nil {
		createTable(t, e, "d", table, schema)
	}
	md, dp := writerSchema(t, schema)
	w, err := mw.NewManagedStream(context.Background(), append([]managedwriter.WriterOption{
		managedwriter.WithDestinationTable(parent), managedwriter.WithSchemaDescriptor(dp)}, opts...)...)
	if err != nil {
		t.Fatalf("NewManagedStream: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w, func(ids ...int) [][]byte {
		var rows [][]byte
		for _, id := range ids {
			rows = append(rows, encodeRow(t, md, map[string]any{"id": id}))
		}
		return rows
	}
}

func TestInjectedResourceExhaustedReachesClient(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	w, rows := simpleWriter(t, e, writerClient(t, addrs), "quota")
	if err := e.SetFaults(Faults{Code: codes.ResourceExhausted, Message: "Exceeds quota: injected", Next: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(1)})[0])
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("append: %v, want ResourceExhausted", err)
	}
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(2)})[0]); err != nil {
		t.Fatalf("append after the fault: %v", err)
	}
	if ids := rowIDs(t, e, "d", "quota"); !slices.Equal(ids, []int64{2}) {
		t.Fatalf("rows %v, want [2]: a failed append must write nothing", ids)
	}
	if s := e.Stats(); s.FaultsInjected != 1 || s.FailedAppends != 1 {
		t.Errorf("stats: %d injected, %d failed; want 1 and 1", s.FaultsInjected, s.FailedAppends)
	}
}

func TestRetriedFaultsLandExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
	}{
		// BigQuery's throughput quota text, which managedwriter retries.
		{"throughput quota in response", Faults{Next: 2}},
		{"unavailable ends the stream", Faults{Code: codes.Unavailable, Next: 1, Terminate: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, addrs := startEmulator(t, Options{})
			w, rows := simpleWriter(t, e, writerClient(t, addrs), "retry", managedwriter.EnableWriteRetries(true))
			if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(0)})[0]); err != nil {
				t.Fatalf("first append: %v", err)
			}
			if err := e.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			results := appendAll(t, w, [][][]byte{rows(1), rows(2), rows(3)})
			for _, r := range results {
				if _, _, err := waitResult(t, r); err != nil {
					t.Fatalf("append with retries: %v", err)
				}
			}
			ids := rowIDs(t, e, "d", "retry")
			slices.Sort(ids)
			if !slices.Equal(ids, []int64{0, 1, 2, 3}) {
				t.Fatalf("rows %v, want [0 1 2 3] exactly once", ids)
			}
			if s := e.Stats(); s.FaultsInjected != int64(tc.faults.Next) {
				t.Errorf("%d faults injected, want %d", s.FaultsInjected, tc.faults.Next)
			}
		})
	}
}

func TestLatencyDelaysResponses(t *testing.T) {
	e, addrs := startEmulator(t, Options{Faults: Faults{Latency: 100 * time.Millisecond}})
	w, rows := simpleWriter(t, e, writerClient(t, addrs), "slow")
	start := time.Now()
	results := appendAll(t, w, [][][]byte{rows(1), rows(2), rows(3)})
	for _, r := range results {
		if _, _, err := waitResult(t, r); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("3 appends answered in %v, want at least the 100ms latency", d)
	}
}

func TestConnectionQuotaRefusesExtraStream(t *testing.T) {
	const quota = 2
	e, addrs := startEmulator(t, Options{Faults: Faults{MaxConnections: quota}})
	mw := writerClient(t, addrs) // not multiplexed: one stream per writer
	for i := range quota {
		w, rows := simpleWriter(t, e, mw, tableID(i))
		if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(i)})[0]); err != nil {
			t.Fatalf("writer %d within quota: %v", i, err)
		}
	}
	w, rows := simpleWriter(t, e, mw, "over")
	_, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(9)})[0])
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "concurrent connections") {
		t.Fatalf("stream %d: %v, want ResourceExhausted for concurrent connections", quota+1, err)
	}
	s := e.Stats()
	if s.PeakStreams != quota || s.RejectedStreams < 1 {
		t.Errorf("stats: peak streams %d, rejected %d; want %d and >= 1", s.PeakStreams, s.RejectedStreams, quota)
	}
	if n := len(rowIDs(t, e, "d", "over")); n != 0 {
		t.Errorf("%d rows written by a refused stream", n)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e, addrs := startEmulator(t, Options{})
	base := "http://" + addrs.REST
	body := `{"code":"UNAVAILABLE","next":3,"latency":"5ms","max_connections":10}`
	resp, err := http.Post(base+"/emulator/faults", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /emulator/faults: %s", resp.Status)
	}
	want := Faults{Code: codes.Unavailable, Next: 3, Latency: 5 * time.Millisecond, MaxConnections: 10}
	if got := e.Faults(); got != want {
		t.Fatalf("faults %+v, want %+v", got, want)
	}
	resp, err = http.Post(base+"/emulator/faults", "application/json", strings.NewReader(`{"rate":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST an invalid rate: %s, want 400", resp.Status)
	}

	w, rows := simpleWriter(t, e, writerClient(t, addrs), "admin")
	e.SetFaults(Faults{})
	if _, _, err := waitResult(t, appendAll(t, w, [][][]byte{rows(1, 2)})[0]); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(base + "/emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.RowsByTable["p.d.admin"] != 2 || s.PeakConnections < 1 || s.Appends != 1 {
		t.Fatalf("GET /emulator/stats: %+v", s)
	}
	resp2, err := http.Post(base+"/emulator/stats/reset", "application/json", bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if s := e.Stats(); s.Appends != 0 || len(s.RowsByTable) != 0 {
		t.Fatalf("after reset: %+v", s)
	}
}
