package loadgen

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/connector"
)

// loadtest --format avro --schema-evolve against the dev stack: every
// record is Avro in Confluent's wire format with the built-in schema
// registered as <topic>-value, the second half with its next version;
// Sluice's decoder and Confluent's Python deserializer both read every
// one, ids 0..N-1, nested fields and all, across the change.
func TestAvroLoadIsReadByConfluentsDeserializer(t *testing.T) {
	stack := startDevStack(t)
	const n = 500
	res, records := produceAndRead(t, ProduceOptions{Brokers: stack.Brokers, Topic: "shop", CreateTopic: true,
		Format: FormatAvro, RegistryURL: stack.RegistryURL, Records: n, Connections: 2, SchemaEvolve: true,
		Profile: Profile{Kind: ProfileSchedule, Points: []SchedulePoint{{0, 500}, {200 * time.Millisecond, 2000}}}})
	if res.Records != n {
		t.Fatalf("acked %d of %d", res.Records, n)
	}

	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: stack.RegistryURL})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewAvroConfluent(reg, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var hexLines strings.Builder
	for _, r := range records {
		if len(r.Value) < 5 || r.Value[0] != 0 {
			t.Fatalf("value %x is not in Confluent's wire format", r.Value[:min(8, len(r.Value))])
		}
		rec := &connector.Record{Value: r.Value}
		if err := dec.Decode(context.Background(), rec); err != nil {
			t.Fatalf("decoding: %v", err)
		}
		id, _ := rec.Fields["id"].(int64)
		seen[id] = true
		user, _ := rec.Fields["user"].(map[string]any)
		items, _ := rec.Fields["items"].([]any)
		total, _ := rec.Fields["total"].(*big.Rat)
		if user == nil || user["country"] == "" || len(items) == 0 || total == nil {
			t.Fatalf("record %d lacks its nested fields: %v", id, rec.Fields)
		}
		if version, has := rec.Fields[EvolvedField]; (id >= n/2) != (has && version == int64(2)) {
			t.Errorf("record %d: %s = %v (present %v), want 2 from record %d on", id, EvolvedField, version, has, n/2)
		}
		hexLines.WriteString(hex.EncodeToString(r.Value) + "\n")
	}
	if len(seen) != n || !seen[0] || !seen[n-1] {
		t.Fatalf("%d distinct ids, want 0..%d", len(seen), n-1)
	}

	if out, err := exec.Command("/usr/bin/python3", "-c", "from confluent_kafka.avro import CachedSchemaRegistryClient").CombinedOutput(); err != nil {
		t.Skipf("/usr/bin/python3 cannot load confluent_kafka's Avro serde (apt-get install -y python3-confluent-kafka python3-avro python3-requests): %v: %s", err, bytes.TrimSpace(out))
	}
	cmd := exec.Command("/usr/bin/python3", "testdata/read_avro_with_python.py", stack.RegistryURL)
	cmd.Stdin = strings.NewReader(hexLines.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Confluent's deserializer: %v", err)
	}
	pyIDs := map[int64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		id, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 4 || f[1] == "" || f[2] == "0" {
			t.Fatalf("Python read %q", line)
		}
		if want := map[bool]string{true: "2", false: "None"}[id >= n/2]; f[3] != want {
			t.Errorf("Python read %s = %s for record %d, want %s", EvolvedField, f[3], id, want)
		}
		pyIDs[id] = true
	}
	if len(pyIDs) != n {
		t.Errorf("Confluent's deserializer read %d distinct ids, want %d", len(pyIDs), n)
	}
	resp, err := http.Get(stack.RegistryURL + "/subjects/shop-value/versions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	versions, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(versions)) != "[1,2]" {
		t.Errorf("registered versions of shop-value: %s, want [1,2]", versions)
	}
}

// monitor --decode avro counts the events that decode, per topic, while
// an Avro load runs, and names a value that does not decode.
func TestMonitorCountsDecodedAvroEventsPerSecond(t *testing.T) {
	stack := startDevStack(t)
	adm := adminClient(t, stack.Brokers)
	if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, "shop"); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	mon := startMonitor(t, ctx, MonitorOptions{Brokers: stack.Brokers, Topics: []string{"shop"},
		Interval: 200 * time.Millisecond, Decode: FormatAvro, RegistryURL: stack.RegistryURL})
	mon.waitFor(t, "a sample with decode rates", func(s MonitorSample) bool {
		tp, ok := s.Topic("shop")
		return ok && tp.HasDecoded
	})
	const n = 2000
	res, err := Produce(ctx, ProduceOptions{Brokers: stack.Brokers, Topic: "shop", Format: FormatAvro,
		RegistryURL: stack.RegistryURL, Records: n, Profile: Profile{Rate: 2000}})
	if err != nil || res.Records != n {
		t.Fatalf("producing: %d acked, %v", res.Records, err)
	}
	// One value that is not Avro.
	cl := consumeClient(t, stack.Brokers)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "shop", Value: []byte(`{"id": 1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	total := func() (decoded, failed float64, errs string) {
		mon.mu.Lock()
		defer mon.mu.Unlock()
		var prev time.Time
		for _, s := range mon.samples {
			if tp, ok := s.Topic("shop"); ok && tp.HasDecoded {
				secs := s.At.Sub(prev).Seconds()
				decoded += tp.DecodedRate * secs
				failed += tp.FailedRate * secs
			}
			prev = s.At
			errs += s.Err
		}
		return decoded, failed, errs
	}
	mon.waitFor(t, "every event decoded and the bad one counted", func(MonitorSample) bool {
		d, f, _ := total()
		return d > n-0.5 && f > 0.5
	})
	stop()
	<-mon.done
	decoded, failed, errs := total()
	if decoded > n+0.5 || failed > 1.5 {
		t.Errorf("%.1f decoded, %.1f failed: want %d and 1", decoded, failed, n)
	}
	if !strings.Contains(errs, "decoding shop/") {
		t.Errorf("the samples do not name the value that failed: %q", errs)
	}
}

func consumeClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestSchemaEvolveNeedsARecordWithoutItsField(t *testing.T) {
	for schema, want := range map[string]string{
		`"string"`: "needs a record schema",
		`{"type": "record", "name": "R", "fields": [{"name": "loadtest_version", "type": "int"}]}`: "already has a field loadtest_version",
	} {
		if _, err := evolveSchema(schema); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", schema, err, want)
		}
	}
	next, err := evolveSchema(ShopEventSchema)
	if err != nil || !strings.Contains(next, `{"default":null,"name":"loadtest_version","type":["null","int"]}`) {
		t.Errorf("evolved shop event: %v\n%s", err, next)
	}
}
