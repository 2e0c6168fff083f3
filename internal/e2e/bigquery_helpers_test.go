package e2e

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/bqemu"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/bigquery"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

const bqProject, bqDataset = "demo", "kafka"

// startBQEmulator serves an in-memory BigQuery emulator for the test.
func startBQEmulator(t *testing.T, faults bqemu.Faults) (*bqemu.Emulator, bqemu.Addrs) {
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

// bqCreate makes the sink create its dataset and tables.
const bqCreate = ", create_tables: true, create_dataset: true"

// bqSinkYAML is the sink block for the emulator; extra adds keys
// (", key: value").
func bqSinkYAML(addrs bqemu.Addrs, table string, maxConnections int, extra string) string {
	return fmt.Sprintf(`sink:
  bigquery: {project: %s, dataset: %s, table: %q, max_connections: %d,
             endpoint: %q, rest_endpoint: "http://%s"%s}
`, bqProject, bqDataset, table, maxConnections, addrs.GRPC, addrs.REST, extra)
}

// bqRunning is a pipeline running in the test process.
type bqRunning struct {
	p    *pipeline.Pipeline
	sink *bigquery.Sink
	stop func()
}

// bqRunPipeline builds a pipeline with assembly and runs it.
func bqRunPipeline(t *testing.T, yaml string) *bqRunning {
	t.Helper()
	b, err := assembly.Build(context.Background(), parsePipeline(t, yaml), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return bqStart(t, b.Pipeline, b.Sink.(*bigquery.Sink), func() { b.Close(context.Background()) })
}

func bqStart(t *testing.T, p *pipeline.Pipeline, sink *bigquery.Sink, closeAll func()) *bqRunning {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	r := &bqRunning{p: p, sink: sink}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline run: %v", err)
		}
		closeAll()
	}
	t.Cleanup(r.stop)
	return r
}

// bqWaitCommitted waits until the group committed the end of every
// partition of topic: every record is durable in BigQuery or handled.
func bqWaitCommitted(t *testing.T, brokers []string, group, topic string, d time.Duration) {
	t.Helper()
	adm := adminClient(t, brokers)
	ends := endOffsets(t, adm, topic)
	eventually(t, d, "committed offsets to reach the end of "+topic, func() bool {
		resp, err := adm.FetchOffsets(context.Background(), group)
		if err != nil { // the group has not committed yet
			return false
		}
		for p, end := range ends {
			o, ok := resp.Lookup(topic, p)
			if !ok || o.At != end {
				return false
			}
		}
		return true
	})
}

// bqRowsByID counts the rows of every table of the dataset by their id.
func bqRowsByID(t *testing.T, e *bqemu.Emulator) (map[int64]int, map[string]int64) {
	t.Helper()
	ids := map[int64]int{}
	byTable := map[string]int64{}
	for key := range e.Stats().RowsByTable {
		table := key[len(bqProject+"."+bqDataset+"."):]
		rows, err := e.Rows(context.Background(), bqProject, bqDataset, table)
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		for _, r := range rows {
			ids[r["id"].(int64)]++
		}
		byTable[table] = int64(len(rows))
	}
	return ids, byTable
}

// bqCheckOnce checks ids [0, n) each landed once; it returns the number of
// duplicate rows, failing on any missing id.
func bqCheckOnce(t *testing.T, ids map[int64]int, n int) (dups int) {
	t.Helper()
	for i := range int64(n) {
		switch c := ids[i]; {
		case c == 0:
			t.Fatalf("id %d is missing from BigQuery", i)
		case c > 1:
			dups += c - 1
		}
	}
	if len(ids) != n {
		t.Fatalf("%d distinct ids in BigQuery, want %d", len(ids), n)
	}
	return dups
}

// bqPurchaseAvro is a PurchaseRequestEvent as the reported pipeline carries.
const bqPurchaseAvro = `{"type":"record","name":"PurchaseRequestEvent","namespace":"com.example","fields":[
 {"name":"id","type":"long"},
 {"name":"store","type":"string"},
 {"name":"customer","type":"string"},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
 {"name":"currency","type":"string"},
 {"name":"requested_at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
   {"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
 {"name":"note","type":["null","string"],"default":null}%s
]}`

func bqPurchaseFields(i, tables int) map[string]any {
	return map[string]any{
		"id": int64(i), "store": fmt.Sprintf("store-%04d", i%tables), "customer": fmt.Sprintf("c%d", i%977),
		"amount": big.NewRat(int64(i%100000), 100), "currency": "EUR",
		"requested_at": time.UnixMilli(1758600000000 + int64(i)).UTC(),
		"items":        []any{map[string]any{"sku": fmt.Sprintf("sku-%d", i%50), "qty": int64(1 + i%3)}},
	}
}

// bqProduceAvro encodes records with schema (registering it under
// <topic>-value) and produces them, at perSecond when > 0.
func bqProduceAvro(t *testing.T, brokers []string, registryURL, topic, schema string, n int, perSecond float64, fields func(i int) map[string]any) {
	t.Helper()
	ctx := context.Background()
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: registryURL})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, schema, codec.SubjectTopic, true)
	if err != nil {
		t.Fatal(err)
	}
	var limiter *rate.Limiter
	if perSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond/20)))
	}
	produceAll(t, brokers, limiter, 0, n, func(i int) *kgo.Record {
		f := fields(i)
		v, err := enc.Encode(ctx, topic, &connector.Record{Fields: f})
		if err != nil {
			t.Fatalf("encoding record %d: %v", i, err)
		}
		return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(f["id"])), Value: v}
	})
}

// bqProduceJSON produces n JSON values made by value(i), keyed by i.
func bqProduceJSON(t *testing.T, brokers []string, topic string, from, n int, value func(i int) string) {
	t.Helper()
	produceAll(t, brokers, nil, from, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(value(i))}
	})
}

// bqCheckNoFailure fails when the pipeline saw an error: quota
// errors and the like must stay inside the sink.
func bqCheckNoFailure(t *testing.T, st pipeline.Status) {
	t.Helper()
	if st.Error != "" || st.Errors != 0 || st.Retries != 0 || st.DeadLettered != 0 {
		t.Fatalf("pipeline status: error %q, %d errors, %d retried writes, %d dead-lettered; want none",
			st.Error, st.Errors, st.Retries, st.DeadLettered)
	}
}
