package sql_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/registry"
)

// benchAvroSchema is the benchmark row as Avro: the same columns as the
// JSON records, with a decimal price and a timestamp.
const benchAvroSchema = `{"type":"record","name":"Item","namespace":"bench","fields":[
	{"name":"id","type":"long"},
	{"name":"name","type":"string"},
	{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
	{"name":"category","type":"string"},
	{"name":"sku","type":"string"},
	{"name":"description","type":"string"},
	{"name":"in_stock","type":"boolean"},
	{"name":"updated_at","type":{"type":"long","logicalType":"timestamp-micros"}}]}`

var (
	benchAvroOnce sync.Once
	benchAvroURL  string
)

// benchAvroTopic fills bench-avro (6 partitions, on the bench broker) with
// the benchmark rows in Confluent wire format, the schema in an in-process
// registry, and returns the registry's URL.
func benchAvroTopic(b *testing.B) string {
	brokers := benchTopic(b)
	benchAvroOnce.Do(func() {
		srv, err := registry.New(registry.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := srv.Start(context.Background(), "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		benchAvroURL = "http://" + r.Addr()
		reg, err := codec.NewRegistry(codec.RegistryOptions{URL: benchAvroURL})
		if err != nil {
			b.Fatal(err)
		}
		enc, err := codec.NewAvroConfluentEncoder(reg, benchAvroSchema, codec.SubjectTopic, true)
		if err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 6, 1, nil, "bench-avro"); err != nil {
			b.Fatal(err)
		}
		at := time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC)
		for i := 0; i < benchRecords(); i++ {
			fields := map[string]any{"id": int64(i), "name": fmt.Sprintf("item %d", i), "price": big.NewRat(int64(i%1000*10+5), 10),
				"category": fmt.Sprintf("category-%02d", i%20), "sku": fmt.Sprintf("SKU-%08d", i),
				"description": "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", "in_stock": i%3 == 0, "updated_at": at}
			v, err := enc.Encode(context.Background(), "bench-avro", &connector.Record{Fields: fields})
			if err != nil {
				b.Fatal(err)
			}
			cl.Produce(context.Background(), &kgo.Record{Topic: "bench-avro", Value: v}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	return benchAvroURL
}

// The DESIGN's first example: Avro from a Schema Registry into a
// PostgreSQL staging table.
func BenchmarkKafkaAvroToPostgresStaging(b *testing.B) {
	url := benchAvroTopic(b)
	x := benchTarget(b, "postgres")
	stg, _ := x.staging(b)
	runKafkaToSQLFormat(b, "postgres", x.server, x.sinkCfg(stg)+"}", 1, benchRecords(), func(built *benchPipeline) int64 {
		return built.p.Status().RecordsOut
	}, benchTopic(b), "bench-avro", fmt.Sprintf("{value: avro-confluent, schema_registry: {url: %q}}", url))
}
