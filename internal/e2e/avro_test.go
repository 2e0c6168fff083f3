package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/sluice-dev/sluice/internal/registry"
	"github.com/twmb/franz-go/pkg/kgo"
)

const filmSchema = `{"type":"record","name":"Film","namespace":"demo","fields":[
 {"name":"id","type":"long"},{"name":"title","type":"string"},
 {"name":"rating","type":["null","double"],"default":null}]}`

// startRegistry serves a schema registry on addr ("127.0.0.1:0" for any
// port) persisted in dir; the returned stop function takes it down.
func startRegistry(t *testing.T, addr, dir string) (url string, stop func()) {
	t.Helper()
	srv, err := registry.New(registry.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := srv.Start(ctx, addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			_ = r.Wait()
		}
	}
	t.Cleanup(stop)
	return r.URL(), stop
}

// avroValues encodes films id from..from+n-1 in Confluent wire format.
func avroValues(t *testing.T, regURL, topic string, from, n int) [][]byte {
	t.Helper()
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: regURL})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, filmSchema, codec.SubjectTopic, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 0, n)
	for i := from; i < from+n; i++ {
		b, err := enc.Encode(context.Background(), topic, &connector.Record{Fields: map[string]any{"id": int64(i), "title": fmt.Sprintf("film %d", i), "rating": float64(i%10) / 2}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func produceValues(t *testing.T, brokers []string, topic string, values [][]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: v, Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readLines returns the JSON lines of the file sink.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestAvroBadRecordsGoWhereOnErrorSays(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	regURL, _ := startRegistry(t, "127.0.0.1:0", "")
	good := avroValues(t, regURL, "films", 0, 100)
	truncated := good[1][:len(good[1])-3]
	wrongMagic := append([]byte{7}, good[2][1:]...)
	unknownID := append([]byte{0, 0, 0, 0x7f, 0x7f}, good[3][5:]...)
	notMatching := []byte{0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} // a long that never ends
	bad := [][]byte{truncated, wrongMagic, unknownID, notMatching}
	reasons := []string{"avro-decode", "wire-format", "unknown-schema", "avro-decode"}

	for _, mode := range []string{"dlq", "skip", "fail"} {
		t.Run(mode, func(t *testing.T) {
			topic := "films-" + mode
			createTopic(t, brokers, topic, 1)
			values := append(append([][]byte{}, good[:50]...), bad...)
			values = append(values, good[50:]...)
			produceValues(t, brokers, topic, values)
			out := filepath.Join(t.TempDir(), "out.jsonl")
			p := parsePipeline(t, fmt.Sprintf(`
name: films-%s
source: {kafka: {brokers: [%s], topics: [%s], group: g-%s}}
format: {value: avro-confluent, schema_registry: {url: %s}}
on_error: %s
sink: {file: {path: %s}}
`, mode, brokers[0], topic, mode, regURL, mode, out))
			b, err := assembly.Build(context.Background(), p, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(context.Background())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- b.Pipeline.Run(ctx) }()

			if mode == "fail" {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), topic+"/0@50") || !strings.Contains(err.Error(), "avro-decode") {
						t.Fatalf("err = %v; want a failure naming %s/0@50 and the reason", err, topic)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("pipeline did not stop on the bad record")
				}
				return
			}
			eventually(t, 30*time.Second, "all records handled", func() bool {
				st := b.Pipeline.Status()
				return st.RecordsOut+st.DeadLettered+st.Skipped == 104
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, out)
			if len(lines) != 100 {
				t.Fatalf("%d records at the sink, want the 100 good ones", len(lines))
			}
			v := lines[0]["value"].(map[string]any)
			if v["title"] != "film 0" || v["id"].(float64) != 0 {
				t.Fatalf("first record decoded as %v", v)
			}
			st := b.Pipeline.Status()
			if mode == "skip" {
				if st.Skipped != 4 {
					t.Fatalf("skipped = %d, want 4", st.Skipped)
				}
				return
			}
			if st.DeadLettered != 4 {
				t.Fatalf("dead-lettered = %d, want 4 (in = out + dlq)", st.DeadLettered)
			}
			cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			defer cl.Close()
			var dlq []*kgo.Record
			rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer rcancel()
			for len(dlq) < 4 && rctx.Err() == nil {
				cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { dlq = append(dlq, r) })
			}
			if len(dlq) != 4 {
				t.Fatalf("%d records in %s.dlq, want 4", len(dlq), topic)
			}
			for i, r := range dlq {
				if string(r.Value) != string(bad[i]) {
					t.Errorf("dlq record %d: value is not the original bytes", i)
				}
				h := map[string]string{}
				for _, hd := range r.Headers {
					h[hd.Key] = string(hd.Value)
				}
				if h["origin"] != "test" || h[kafka.HeaderReason] != reasons[i] || h[kafka.HeaderTopic] != topic ||
					h[kafka.HeaderPartition] != "0" || h[kafka.HeaderOffset] != fmt.Sprint(50+i) || h[kafka.HeaderPipeline] != "films-dlq" || h[kafka.HeaderError] == "" {
					t.Errorf("dlq record %d headers = %v", i, h)
				}
			}
		})
	}
}

// TestRegistryOutageLosesNothing: the registry is down for a while in the
// middle of a stream with new schema ids arriving: the pipeline waits and
// retries; nothing goes to the dead-letter topic and nothing is lost.
func TestRegistryOutageLosesNothing(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	regURL, stop := startRegistry(t, addr, dir)
	createTopic(t, brokers, "films", 3)
	produceValues(t, brokers, "films", avroValues(t, regURL, "films", 0, 1000))
	stop() // the registry goes down before the pipeline has seen any schema

	out := filepath.Join(t.TempDir(), "out.jsonl")
	p := parsePipeline(t, fmt.Sprintf(`
name: outage
source: {kafka: {brokers: [%s], topics: [films], group: outage}}
format: {value: avro-confluent, schema_registry: {url: %s, timeout: 1s}}
on_error: dlq
sink: {file: {path: %s}}
`, brokers[0], regURL, out))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	time.Sleep(10 * time.Second) // the outage itself, not a synchronisation
	if st := b.Pipeline.Status(); st.RecordsOut != 0 || st.DeadLettered != 0 || st.Retries == 0 {
		t.Fatalf("during the outage: out %d, dlq %d, retries %d; want 0, 0, > 0", st.RecordsOut, st.DeadLettered, st.Retries)
	}
	startRegistry(t, addr, dir) // back, with its persisted schemas
	eventually(t, 60*time.Second, "1000 records after the registry came back", func() bool { return b.Pipeline.Status().RecordsOut == 1000 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := b.Pipeline.Status(); st.DeadLettered != 0 {
		t.Fatalf("%d records dead-lettered for a registry outage; it is transient", st.DeadLettered)
	}
	if n := len(readLines(t, out)); n != 1000 {
		t.Fatalf("%d records at the sink, want 1000", n)
	}
}

// TestJSONInAvroOut re-encodes JSON records as Avro in the Kafka sink; a
// Confluent-format decoder reads them back with the registered schema.
func TestJSONInAvroOut(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	regURL, _ := startRegistry(t, "127.0.0.1:0", "")
	createTopic(t, brokers, "films.json", 2)
	createTopic(t, brokers, "films.avro", 2)
	var values [][]byte
	for i := 0; i < 300; i++ {
		values = append(values, []byte(fmt.Sprintf(`{"id":%d,"title":"film %d","rating":%d.5}`, i, i, i%5)))
	}
	values = append(values, []byte(`{"id":"not a number","title":"x"}`)) // cannot be encoded
	produceValues(t, brokers, "films.json", values)
	schema, _ := json.Marshal(filmSchema)
	p := parsePipeline(t, fmt.Sprintf(`
name: json-to-avro
source: {kafka: {brokers: [%[1]s], topics: [films.json], group: j2a}}
format: {value: json}
on_error: skip
sink:
  kafka:
    brokers: [%[1]s]
    topic: films.avro
    format: {value: avro-confluent, schema_registry: {url: %[2]s}, schema: %[3]s, subject_strategy: record}
`, brokers[0], regURL, schema))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	eventually(t, 30*time.Second, "300 written and 1 skipped", func() bool {
		st := b.Pipeline.Status()
		return st.RecordsOut+st.Skipped == 301 && st.Skipped == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder(codec.Options{Value: codec.FormatAvroConfluent, SchemaRegistry: codec.RegistryOptions{URL: regURL}})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("films.avro"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	got := map[int64]bool{}
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	for len(got) < 300 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			rec := &connector.Record{Topic: r.Topic, Value: r.Value}
			if err := dec.Decode(context.Background(), rec); err != nil {
				t.Fatalf("decoding what the sink wrote: %v", err)
			}
			id := rec.Fields["id"].(int64)
			if rec.Fields["title"] != fmt.Sprintf("film %d", id) || rec.Schema.Name != "demo.Film" {
				t.Fatalf("record %d decoded as %v (schema %s)", id, rec.Fields, rec.Schema.Name)
			}
			got[id] = true
		})
	}
	if len(got) != 300 {
		t.Fatalf("%d distinct films decoded from the Avro topic, want 300", len(got))
	}
}
