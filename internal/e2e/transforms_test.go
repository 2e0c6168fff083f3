package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// fileLine is one line of the file sink.
type fileLine struct {
	Offset  int64             `json:"offset"`
	Key     any               `json:"key"`
	Value   map[string]any    `json:"value"`
	Headers map[string]string `json:"headers"`
}

func readFileLines(t *testing.T, path string) []fileLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []fileLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l fileLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line being written
		}
		out = append(out, l)
	}
	return out
}

// consumeRecords reads want records of topic from the start.
func consumeRecords(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// Every step kind on JSON records from Kafka into a file: test events are
// filtered out (counted, offsets still committed), the others are
// reshaped, keyed and tagged, and the one record an expression fails on
// goes to the dead-letter topic with the step in its error.
func TestTransformsKafkaToFileEveryStep(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "orders", 3)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	const n, broken = 300, 7
	produceAll(t, brokers, nil, 0, n, func(i int) *kgo.Record {
		kind, amount := "sale", fmt.Sprintf(`,"amount":%d.25`, i)
		if i%10 == 0 {
			kind = "test"
		}
		if i == broken {
			amount = "" // set total_cents cannot be computed
		}
		return &kgo.Record{Topic: "orders", Key: []byte("old"), Value: []byte(fmt.Sprintf(
			`{"id":%d,"kind":%q%s,"country":"fr","note":"internal","email":"u%d@example.com","card":{"number":"4111-%04d","brand":"visa"}}`,
			i, kind, amount, i, i))}
	})
	b, stop := runPipeline(t, fmt.Sprintf(`
name: tf
source:
  kafka: {brokers: [%s], topics: [orders], group: tf, consumers: 2}
format: {value: json}
on_error: dlq
transforms:
  - filter: 'value.kind != "test"'
  - set: {total_cents: 'int(value.amount * 100.0)', country: 'value.country.upperAscii()'}
  - drop: [note, card.brand]
  - rename: {id: order_id}
  - mask: {card.number: sha256, email: redact}
  - key: 'string(value.order_id)'
  - headers: {source: '"web"', via: 'topic + "/" + string(partition)'}
sink:
  file: {path: %s}
`, brokers[0], out))
	const tests = n / 10
	const want = n - tests - 1
	eventually(t, 60*time.Second, "every kept record in the file", func() bool { return len(readFileLines(t, out)) >= want })
	waitCommittedToEnd(t, adminClient(t, brokers), "tf", "orders", 30*time.Second)
	st := b.Pipeline.Status()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	lines := readFileLines(t, out)
	if len(lines) != want {
		t.Fatalf("%d lines in the file, want %d", len(lines), want)
	}
	seen := map[float64]bool{}
	for _, l := range lines {
		v := l.Value
		id, _ := v["order_id"].(float64)
		if seen[id] {
			t.Fatalf("order %v written twice", id)
		}
		seen[id] = true
		sum := sha256.Sum256([]byte(fmt.Sprintf("4111-%04d", int(id))))
		card, _ := v["card"].(map[string]any)
		switch {
		case v["kind"] != "sale" || int(id)%10 == 0 || int(id) == broken:
			t.Fatalf("record %v should not be in the file: %v", id, v)
		case v["total_cents"] != float64(int(id)*100+25) || v["country"] != "FR":
			t.Fatalf("set not applied: %v", v)
		case v["note"] != nil || v["id"] != nil || card["brand"] != nil:
			t.Fatalf("drop or rename not applied: %v", v)
		case card["number"] != hex.EncodeToString(sum[:]) || v["email"] != "***":
			t.Fatalf("mask not applied: %v", v)
		case l.Key != fmt.Sprint(int(id)):
			t.Fatalf("key %v, want %v", l.Key, id)
		case l.Headers["source"] != "web" || !strings.HasPrefix(l.Headers["via"], "orders/"):
			t.Fatalf("headers %v", l.Headers)
		}
	}
	if st.Filtered != tests || st.DeadLettered != 1 || st.RecordsIn != n {
		t.Fatalf("status: in %d, filtered %d, dead-lettered %d; want %d, %d, 1", st.RecordsIn, st.Filtered, st.DeadLettered, n, tests)
	}
	dl := consumeRecords(t, brokers, "orders.dlq", 1)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	h := map[string]string{}
	for _, kh := range dl[0].Headers {
		h[kh.Key] = string(kh.Value)
	}
	if h[kafka.HeaderReason] != "transform" || !strings.Contains(h[kafka.HeaderError], "transforms[1].set.total_cents") ||
		!strings.Contains(string(dl[0].Value), fmt.Sprintf(`"id":%d`, broken)) || string(dl[0].Key) != "old" {
		t.Fatalf("dead letter %q key %q headers %v", dl[0].Value, dl[0].Key, h)
	}
}

// A SQL sink normally visits undecoded values itself; with transforms the
// engine decodes, and the table gets what the transforms left: here 90% of
// the records filtered out, a derived column, a dropped one, exactly once.
func TestTransformsKafkaToSQLiteFilterAndSet(t *testing.T) {
	d := openSQL(t, "sqlite")
	pipe := sqlName("litetf")
	d.exec(t, "CREATE TABLE fin (id INTEGER, price_cents INTEGER)")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "litetf", 3)
	const n = 1000
	produceN(t, brokers, "litetf", 0, n)
	_, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [litetf], group: %s, consumers: 2}
format: {value: json}
delivery: exactly_once
transforms:
  - filter: 'value.id %% 10 == 0'
  - set: {price_cents: 'int(value.price * 100.0)'}
  - drop: [name]
sink:
  sqlite:
    path: %s
    staging_table: stg
    create_table: true
    merge:
      every_records: 50
      idle: 300ms
      statements:
        - "INSERT INTO fin SELECT id, price_cents FROM stg WHERE _sluice_batch <= {{.HighWaterMark}}"
        - "DELETE FROM stg WHERE _sluice_batch <= {{.HighWaterMark}}"
`, pipe, brokers[0], pipe, d.path))
	const want = n / 10
	eventually(t, 60*time.Second, "the kept records merged", func() bool { return d.count(t, "SELECT count(*) FROM fin") >= want })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := d.count(t, "SELECT count(DISTINCT id) FROM fin WHERE id % 10 = 0"); got != want {
		t.Fatalf("%d distinct kept ids in the table, want %d", got, want)
	}
	if got := d.count(t, "SELECT count(*) FROM fin"); got != want {
		t.Fatalf("%d rows, want %d (exactly once)", got, want)
	}
	// price is (id %% 1000).5, so price_cents is that times 100.
	if bad := d.count(t, "SELECT count(*) FROM fin WHERE price_cents != (id % 1000) * 100 + 50"); bad != 0 {
		t.Fatalf("%d rows with a wrong price_cents", bad)
	}
	if got := d.count(t, "SELECT count(*) FROM pragma_table_info('stg') WHERE name IN ('name')"); got != 0 {
		t.Fatal("the dropped field became a column")
	}
}

const orderSchema = `{"type":"record","name":"Order","namespace":"demo","fields":[
 {"name":"id","type":"long"},
 {"name":"title","type":"string"},
 {"name":"rating","type":["null","double"],"default":null},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"created","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"card","type":{"type":"record","name":"Card","fields":[{"name":"number","type":"string"},{"name":"qty","type":"int"}]}}]}`

// Every step kind on Avro records from the registry: the schema name,
// decimals, timestamps, ints and nested records are usable in
// expressions, and the reshaped records reach the file.
func TestTransformsAvroEveryStep(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "avro-orders", 2)
	regURL, _ := startRegistry(t, "127.0.0.1:0", t.TempDir())
	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: regURL})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, orderSchema, codec.SubjectTopic, true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	created := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var values [][]byte
	for i := 0; i < n; i++ {
		b, err := enc.Encode(context.Background(), "avro-orders", &connector.Record{Fields: map[string]any{
			"id": int64(i), "title": fmt.Sprintf("order %d", i), "rating": float64(i % 5),
			"price": big.NewRat(int64(i)*100+25, 100), "created": created,
			"card": map[string]any{"number": fmt.Sprintf("4111-%04d", i), "qty": int32(i % 3)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	produceValues(t, brokers, "avro-orders", values)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	_, stop := runPipeline(t, fmt.Sprintf(`
name: tfavro
source:
  kafka: {brokers: [%s], topics: [avro-orders], group: tfavro}
format: {value: avro-confluent, schema_registry: {url: %s}}
transforms:
  - filter: 'schema == "demo.Order" && value.id %% 2 == 0 && value.card.qty >= 0'
  - set: {price_cents: 'int(value.price * 100.0)', year: 'value.created.getFullYear()', item: 'value.title + " x" + string(value.card.qty)'}
  - drop: [rating]
  - rename: {title: name}
  - mask: {card.number: sha256}
  - key: 'string(value.id)'
  - headers: {schema: 'schema'}
sink:
  file: {path: %s}
`, brokers[0], regURL, out))
	const want = n / 2
	eventually(t, 60*time.Second, "the kept records in the file", func() bool { return len(readFileLines(t, out)) >= want })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	lines := readFileLines(t, out)
	if len(lines) != want {
		t.Fatalf("%d lines, want %d", len(lines), want)
	}
	for _, l := range lines {
		v := l.Value
		id := int(v["id"].(float64))
		sum := sha256.Sum256([]byte(fmt.Sprintf("4111-%04d", id)))
		card, _ := v["card"].(map[string]any)
		switch {
		case id%2 != 0:
			t.Fatalf("odd id %d kept", id)
		case v["price_cents"] != float64(id*100+25) || v["year"] != float64(2026) || v["item"] != fmt.Sprintf("order %d x%d", id, id%3):
			t.Fatalf("set on Avro values: %v", v)
		case v["rating"] != nil || v["title"] != nil || v["name"] != fmt.Sprintf("order %d", id):
			t.Fatalf("drop or rename: %v", v)
		case card["number"] != hex.EncodeToString(sum[:]) || card["qty"] != float64(id%3):
			t.Fatalf("mask: %v", v)
		case l.Key != fmt.Sprint(id) || l.Headers["schema"] != "demo.Order":
			t.Fatalf("key %v headers %v", l.Key, l.Headers)
		}
	}
}

// One source, two sinks: orders into a SQLite table, everything else into
// a file, the record whose route cannot be evaluated to the dead-letter
// topic; every record lands exactly where its route says, and the group's
// offsets reach the end only with both sinks durable.
func TestRouteToSQLiteAndFile(t *testing.T) {
	d := openSQL(t, "sqlite")
	pipe := sqlName("route")
	d.exec(t, "CREATE TABLE fin (id INTEGER, amount_cents INTEGER)")
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "mixed", 3)
	const n, broken = 300, 10
	produceAll(t, brokers, nil, 0, n, func(i int) *kgo.Record {
		kind := `"kind":"refund",`
		if i%3 == 0 {
			kind = `"kind":"order",`
		}
		if i == broken {
			kind = ""
		}
		return &kgo.Record{Topic: "mixed", Value: []byte(fmt.Sprintf(`{"id":%d,%s"amount":%d.5}`, i, kind, i))}
	})
	rest := filepath.Join(t.TempDir(), "rest.jsonl")
	b, stop := runPipeline(t, fmt.Sprintf(`
name: %s
source:
  kafka: {brokers: [%s], topics: [mixed], group: %s, consumers: 2}
format: {value: json}
on_error: dlq
transforms:
  - set: {amount_cents: 'int(value.amount * 100.0)'}
  - drop: [amount]
sinks:
  orders:
    sqlite:
      path: %s
      staging_table: stg
      create_table: true
      merge:
        every_records: 20
        idle: 300ms
        statements:
          - "INSERT INTO fin SELECT id, amount_cents FROM stg WHERE _sluice_batch <= {{.HighWaterMark}}"
          - "DELETE FROM stg WHERE _sluice_batch <= {{.HighWaterMark}}"
  rest:
    file: {path: %s}
route:
  - when: 'value.kind == "order"'
    sink: orders
  - sink: rest
`, pipe, brokers[0], pipe, d.path, rest))
	const orders = n / 3
	const rests = n - orders - 1
	eventually(t, 60*time.Second, "orders merged and the rest in the file", func() bool {
		return d.count(t, "SELECT count(*) FROM fin") >= orders && len(readFileLines(t, rest)) >= rests
	})
	waitCommittedToEnd(t, adminClient(t, brokers), pipe, "mixed", 30*time.Second)
	if got := b.Pipeline.Status().RoutedOut; got["orders"] != orders || got["rest"] != rests {
		t.Fatalf("status routed_out %v, want orders %d, rest %d", got, orders, rests)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := d.count(t, "SELECT count(DISTINCT id) FROM fin WHERE id % 3 = 0"); got != orders {
		t.Fatalf("%d distinct orders in the table, want %d", got, orders)
	}
	if got := d.count(t, "SELECT count(*) FROM fin"); got != orders {
		t.Fatalf("%d rows in the table, want %d", got, orders)
	}
	if bad := d.count(t, "SELECT count(*) FROM fin WHERE amount_cents != id * 100 + 50"); bad != 0 {
		t.Fatalf("%d rows with a wrong amount_cents", bad)
	}
	lines := readFileLines(t, rest)
	seen := map[float64]bool{}
	for _, l := range lines {
		id, _ := l.Value["id"].(float64)
		if l.Value["kind"] != "refund" || seen[id] {
			t.Fatalf("file line %v: not a refund, or twice", l.Value)
		}
		seen[id] = true
	}
	if len(lines) != rests {
		t.Fatalf("%d lines in the file, want %d", len(lines), rests)
	}
	dl := consumeRecords(t, brokers, "mixed.dlq", 1)
	if len(dl) != 1 || !strings.Contains(string(dl[0].Value), fmt.Sprintf(`"id":%d,`, broken)) {
		t.Fatalf("dead letters %v", dl)
	}
	h := map[string]string{}
	for _, kh := range dl[0].Headers {
		h[kh.Key] = string(kh.Value)
	}
	if h[kafka.HeaderReason] != "transform" || !strings.Contains(h[kafka.HeaderError], "route[0].when") {
		t.Fatalf("dead letter headers %v", h)
	}
}

// Kafka -> Kafka exactly once with a filter, a set, a key and a header:
// the output topic holds exactly the kept records, reshaped and re-encoded,
// once each under read_committed, across a restart (which reads again the
// filtered records after the last transaction, and filters them again).
func TestTransformsKafkaToKafkaExactlyOnce(t *testing.T) {
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "tfin", 3)
	createTopic(t, brokers, "tfout", 3)
	const n = 2000
	cfg := fmt.Sprintf(`
name: tfk
source:
  kafka: {brokers: [%s], topics: [tfin], group: tfk, consumers: 2}
format: {value: json}
delivery: exactly_once
transforms:
  - filter: 'value.id %% 4 != 0'
  - set: {price_cents: 'int(value.price * 100.0)'}
  - drop: [name]
  - key: '"id-" + string(value.id)'
  - headers: {origin: 'topic'}
sink:
  kafka: {brokers: [%s], topic: tfout, format: {value: json}}
`, brokers[0], brokers[0])
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("tfout"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int]int{}
	// readUntil polls the output until it holds want distinct records.
	readUntil := func(want int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for len(seen) < want && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var v struct {
					ID         int      `json:"id"`
					Name       *string  `json:"name"`
					PriceCents int      `json:"price_cents"`
					Price      *float64 `json:"price"`
				}
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Errorf("output %q: %v", r.Value, err)
					return
				}
				if v.ID%4 == 0 || v.Name != nil || v.Price == nil || v.PriceCents != (v.ID%1000)*100+50 {
					t.Errorf("output %q: filtered or not reshaped", r.Value)
				}
				if string(r.Key) != fmt.Sprintf("id-%d", v.ID) || len(r.Headers) != 1 || string(r.Headers[0].Value) != "tfin" {
					t.Errorf("output %q: key %q, headers %v", r.Value, r.Key, r.Headers)
				}
				seen[v.ID]++
			})
		}
		if len(seen) < want {
			t.Fatalf("%d distinct records in the output, want %d", len(seen), want)
		}
	}
	produceN(t, brokers, "tfin", 0, n)
	_, stop := runPipeline(t, cfg)
	readUntil(n - n/4)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	produceN(t, brokers, "tfin", n, n)
	_, stop = runPipeline(t, cfg)
	readUntil(2 * (n - n/4))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing more may follow: a duplicate would come after the kept ones.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { t.Errorf("extra output record %q", r.Value) })
	for id, times := range seen {
		if times != 1 {
			t.Errorf("record %d written %d times", id, times)
		}
	}
}

// A filter that drops 90% of the records, with `sluice run` killed by
// SIGKILL three times while records arrive: every record that passes the
// filter reaches the sink (at least once), and no filtered one does.
func TestTransformsFilterUnderSIGKILLLosesNothingThatPasses(t *testing.T) {
	const n = 100000
	bin := buildSluice(t)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "tfcrash.in", 6)
	createTopic(t, brokers, "tfcrash.out", 6)
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: tfcrash
source:
  kafka: {brokers: [%s], topics: [tfcrash.in], group: tfcrash, consumers: 2, properties: {auto.commit.interval.ms: 100, session.timeout.ms: 6000, heartbeat.interval.ms: 500, rebalance.timeout.ms: 5000}}
format: {value: json}
transforms:
  - filter: 'value.id %% 10 == 0'
sink:
  kafka: {brokers: [%s], topic: tfcrash.out}
`, brokers[0], brokers[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	// Records arrive while the process is killed: 25,000 a second.
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		lim := rate.NewLimiter(25000, 1000)
		for i := 0; i < n; i++ {
			_ = lim.Wait(context.Background())
			cl.Produce(context.Background(), &kgo.Record{Topic: "tfcrash.in", Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d"}`, i, i))}, nil)
		}
		produced <- cl.Flush(context.Background())
	}()
	adm := adminClient(t, brokers)
	outCount := func() int64 {
		var sum int64
		for _, o := range endOffsets(t, adm, "tfcrash.out") {
			sum += o
		}
		return sum
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--log-level", "warn", file)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	const kills = 3
	for k := 0; k < kills; k++ {
		cmd := start()
		target := int64(n/10) * int64(k+1) / int64(kills+2)
		eventually(t, 120*time.Second, fmt.Sprintf("%d records at the sink before kill %d", target, k+1), func() bool { return outCount() >= target })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}
	cmd := start()
	waitCommittedToEnd(t, adm, "tfcrash", "tfcrash.in", 180*time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	seen := consumeAll(t, brokers, "tfcrash.out", int(outCount()), 60*time.Second)
	dups := 0
	for i := 0; i < n; i++ {
		v := fmt.Sprintf(`{"id":%d,"name":"item %d"}`, i, i)
		switch {
		case i%10 != 0 && seen[v] > 0:
			t.Fatalf("filtered record %d reached the sink", i)
		case i%10 == 0 && seen[v] == 0:
			t.Fatalf("record %d passed the filter and was lost after %d SIGKILLs", i, kills)
		case seen[v] > 1:
			dups += seen[v] - 1
		}
	}
	t.Logf("%d records, %d kept, %d SIGKILLs: %d duplicates", n, n/10, kills, dups)
}
