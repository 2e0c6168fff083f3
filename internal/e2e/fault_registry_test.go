package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/faultproxy"
)

// filmSchemaV2 adds a field with a default: a new schema id for the
// subject, which the pipeline must fetch when records carrying it arrive.
const filmSchemaV2 = `{"type":"record","name":"Film","namespace":"demo","fields":[
 {"name":"id","type":"long"},{"name":"title","type":"string"},
 {"name":"rating","type":["null","double"],"default":null},
 {"name":"genre","type":"string","default":""}]}`

func avroValuesV2(t *testing.T, regURL, topic string, from, n int) [][]byte {
	t.Helper()
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: regURL})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, filmSchemaV2, codec.SubjectTopic, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 0, n)
	for i := from; i < from+n; i++ {
		b, err := enc.Encode(context.Background(), topic, &connector.Record{Fields: map[string]any{"id": int64(i), "title": fmt.Sprintf("film %d", i), "genre": "drama"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestRegistryUnansweredRequestsRetryLosesNothing: while records with a
// new schema id arrive, the registry's requests go unanswered (the
// network black-holes them, or the registry's answers are lost): each
// lookup times out. The pipeline retries, dead-letters nothing (a registry
// that does not answer is transient, not bad input), and delivers every
// record once the registry answers again.
func TestRegistryUnansweredRequestsRetryLosesNothing(t *testing.T) {
	outage := 4 * time.Second
	if longRun() {
		outage = 30 * time.Second
	}
	faults := []struct {
		name  string
		start func(p *faultproxy.Proxy) error
	}{
		{"black_hole", (*faultproxy.Proxy).BlackHole},
		{"answers_dropped", func(p *faultproxy.Proxy) error { p.DropAnswers(0, 0); return nil }},
	}
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			const n = 1000
			brokers := startBroker(t).ListenAddrs()
			regURL, _ := startRegistry(t, "127.0.0.1:0", "")
			proxy := startFaultProxy(t, strings.TrimPrefix(regURL, "http://"))
			createTopic(t, brokers, "films", 3)
			produceValues(t, brokers, "films", avroValues(t, regURL, "films", 0, n/2))
			out := filepath.Join(t.TempDir(), "out.jsonl")
			b, err := assembly.Build(context.Background(), parsePipeline(t, fmt.Sprintf(`
name: registry-%s
source: {kafka: {brokers: [%s], topics: [films], group: registry-%s}}
format: {value: avro-confluent, schema_registry: {url: "http://%s", timeout: 1s}}
on_error: dlq
sink: {file: {path: %s}}
`, fault.name, brokers[0], fault.name, proxy.Addr(), out)), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.Pipeline.Run(ctx) }()
			var runErr error
			stop := sync.OnceFunc(func() {
				cancel()
				runErr = <-done
				_ = b.Close(context.Background())
			})
			t.Cleanup(stop)
			eventually(t, 30*time.Second, "the first records", func() bool { return b.Pipeline.Status().RecordsOut == n/2 })

			if err := fault.start(proxy); err != nil {
				t.Fatal(err)
			}
			faultAt := time.Now()
			produceValues(t, brokers, "films", avroValuesV2(t, regURL, "films", n/2, n/2))
			eventually(t, 30*time.Second, "a retried registry lookup", func() bool { return b.Pipeline.Status().Retries > 0 })
			time.Sleep(outage - time.Since(faultAt)) // the outage itself, not a synchronisation
			st := b.Pipeline.Status()
			if st.RecordsOut != n/2 || st.DeadLettered != 0 {
				t.Fatalf("during the outage: out %d, dead-lettered %d; want %d, 0", st.RecordsOut, st.DeadLettered, n/2)
			}
			if err := proxy.Pass(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "every record after the registry answered again", func() bool { return b.Pipeline.Status().RecordsOut == n })
			stop()
			if runErr != nil {
				t.Fatal(runErr)
			}
			st = b.Pipeline.Status()
			if st.DeadLettered != 0 {
				t.Fatalf("%d records dead-lettered for a registry that did not answer; it is transient", st.DeadLettered)
			}
			ids := map[float64]int{}
			genres := 0
			for _, l := range readLines(t, out) {
				v, _ := l["value"].(map[string]any)
				id, ok := v["id"].(float64)
				if !ok {
					t.Fatalf("line %v has no value.id", l)
				}
				ids[id]++
				if v["genre"] == "drama" {
					genres++
				}
			}
			for i := 0; i < n; i++ {
				if ids[float64(i)] != 1 {
					t.Fatalf("record %d arrived %d times, want once", i, ids[float64(i)])
				}
			}
			if len(ids) != n || genres != n/2 {
				t.Fatalf("%d distinct records, %d decoded with the new schema; want %d, %d", len(ids), genres, n, n/2)
			}
			t.Logf("%s for %v: %d records in, %d out once each, 0 dead-lettered, %d retries", fault.name, outage, n, len(ids), st.Retries)
		})
	}
}
