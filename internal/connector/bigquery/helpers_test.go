package bigquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

const (
	testProject = "p"
	testDataset = "d"
)

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startEmulator serves an in-memory emulator on loopback for the test.
func startEmulator(t testing.TB, faults bqemu.Faults) (*bqemu.Emulator, bqemu.Addrs) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := bqemu.New(ctx, bqemu.Options{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := e.Start(ctx, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		e.Close()
	})
	return e, addrs
}

// sinkConfig is a bigquery sink config for the emulator, with the
// defaults config.Parse would apply.
func sinkConfig(addrs bqemu.Addrs, table string) config.BigQuerySink {
	return config.BigQuerySink{
		Project: testProject, Dataset: testDataset, Table: table,
		CreateTables: true, CreateDataset: true, Location: "US",
		MaxConnections: 4, MaxInFlightAppends: 64,
		AppendTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute,
		Endpoint: addrs.GRPC, RESTEndpoint: "http://" + addrs.REST,
	}
}

func newSink(t testing.TB, cfg config.BigQuerySink) *Sink {
	t.Helper()
	return newSinkWith(t, Options{Config: cfg})
}

// newSinkWith opens a sink with o, named and logging for the test.
func newSinkWith(t testing.TB, o Options) *Sink {
	t.Helper()
	o.Pipeline, o.Logger = t.Name(), testLogger()
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// jsonRecord is a record as the JSON codec decodes it.
func jsonRecord(t testing.TB, topic string, offset int64, value string) *connector.Record {
	t.Helper()
	var fields map[string]any
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		t.Fatalf("test record %s: %v", value, err)
	}
	return &connector.Record{Topic: topic, Offset: offset, Timestamp: time.UnixMilli(1700000000000 + offset).UTC(),
		Key: []byte(fmt.Sprintf("k%d", offset)), Value: []byte(value), Fields: fields}
}

// write calls Write with a deadline and returns the records it refused.
func write(t testing.TB, s *Sink, batch []*connector.Record) []*connector.RecordError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := s.Write(ctx, batch)
	var be *connector.BatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &be):
		return be.Failed
	}
	t.Fatalf("Write: %v", err)
	return nil
}

func rows(t testing.TB, e *bqemu.Emulator, table string) []map[string]any {
	t.Helper()
	r, err := e.Rows(context.Background(), testProject, testDataset, table)
	if err != nil {
		t.Fatalf("rows of %s: %v", table, err)
	}
	return r
}

// countIDs counts the rows of table by their id column.
func countIDs(t testing.TB, e *bqemu.Emulator, table string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, r := range rows(t, e, table) {
		id, ok := r["id"].(int64)
		if !ok {
			t.Fatalf("table %s: row without an INT64 id: %v", table, r)
		}
		out[id]++
	}
	return out
}
