package tail

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/sluice-dev/sluice/internal/loadgen"
)

func readAll(t *testing.T, o Options) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []Message
	if err := Read(ctx, o, func(m Message) error { out = append(out, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("reading did not stop by itself: %d records", len(out))
	}
	return out
}

// tail reads back what loadtest --format avro wrote, decoded through the
// registry, and shows keys, headers, tombstones, text and binary as a
// person can read them; --from, --partition and --max choose what.
func TestTailReadsBackWhatLoadtestWroteDecoded(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	const n = 300
	res, err := loadgen.Produce(context.Background(), loadgen.ProduceOptions{Brokers: stack.Brokers, Topic: "shop",
		CreateTopic: true, Partitions: 3, Format: loadgen.FormatAvro, RegistryURL: stack.RegistryURL, Records: n, Keys: 7})
	if err != nil || res.Records != n {
		t.Fatalf("loadtest: %d acked, %v", res.Records, err)
	}
	base := Options{Brokers: stack.Brokers, Topic: "shop", Partition: -1, RegistryURL: stack.RegistryURL}

	all := base
	all.From, all.UntilEnd = "earliest", true
	msgs := readAll(t, all)
	ids := map[float64]bool{}
	for _, m := range msgs {
		var v struct {
			ID    float64         `json:"id"`
			User  map[string]any  `json:"user"`
			Total json.RawMessage `json:"total"`
		}
		if m.DecodeError != "" || json.Unmarshal(m.Value, &v) != nil || v.User["country"] == nil || len(v.Total) == 0 || v.Total[0] == '"' {
			t.Fatalf("record %d/%d shown as %s (%s)", m.Partition, m.Offset, m.Value, m.DecodeError)
		}
		if m.Key == nil || !strings.HasPrefix(*m.Key, "key-") {
			t.Fatalf("record %d/%d key %v", m.Partition, m.Offset, m.Key)
		}
		ids[v.ID] = true
	}
	if len(msgs) != n || len(ids) != n {
		t.Fatalf("read %d records, %d distinct ids, want %d", len(msgs), len(ids), n)
	}

	one := base
	one.Partition, one.From, one.Max = 1, "5", 3
	if got := readAll(t, one); len(got) != 3 || got[0].Partition != 1 || got[0].Offset != 5 || got[2].Offset != 7 {
		t.Errorf("--partition 1 --from 5 --max 3: %+v", got)
	}
	latest := base
	latest.UntilEnd = true
	if got := readAll(t, latest); len(got) != 0 {
		t.Errorf("--from latest --until-end read %d records", len(got))
	}
	future := base
	future.From, future.UntilEnd = time.Now().Add(time.Hour).UTC().Format(time.RFC3339), true
	if got := readAll(t, future); len(got) != 0 {
		t.Errorf("--from an hour ahead read %d records", len(got))
	}
	past := base
	past.From, past.UntilEnd = res.Started.Add(-time.Minute).UTC().Format(time.RFC3339), true
	if got := readAll(t, past); len(got) != n {
		t.Errorf("--from a minute before the load read %d records, want %d", len(got), n)
	}

	// Records of other shapes.
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx := context.Background()
	if _, err := loadgen.Produce(ctx, loadgen.ProduceOptions{Brokers: stack.Brokers, Topic: "misc", CreateTopic: true, Partitions: 1, Records: 1}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{
		{Topic: "misc", Key: []byte("k1"), Value: []byte(`{"a":1}`), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}},
		{Topic: "misc", Key: []byte("gone"), Value: nil},
		{Topic: "misc", Value: []byte("plain text")},
		{Topic: "misc", Value: []byte{0, 0, 0, 0, 99, 1}}, // Avro framing, unknown schema id
	} {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	misc := base
	misc.Topic, misc.From = "misc", "1"
	misc.UntilEnd = true
	got := readAll(t, misc)
	if len(got) != 4 {
		t.Fatalf("read %d of 4 records: %+v", len(got), got)
	}
	if string(got[0].Value) != `{"a":1}` || *got[0].Key != "k1" || got[0].Headers["trace"] != "abc" {
		t.Errorf("JSON record shown as %+v", got[0])
	}
	if !got[1].Null || *got[1].Key != "gone" {
		t.Errorf("tombstone shown as %+v", got[1])
	}
	if got[2].ValueText != "plain text" || got[2].Key != nil {
		t.Errorf("text record shown as %+v", got[2])
	}
	if got[3].DecodeError == "" || !strings.HasPrefix(got[3].ValueText, "base64:") {
		t.Errorf("undecodable Avro shown as %+v", got[3])
	}
}

func TestTailNamesAMissingTopicOrPartition(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	ctx := context.Background()
	err = Read(ctx, Options{Brokers: stack.Brokers, Topic: "nope", Partition: -1}, func(Message) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing topic: %v", err)
	}
	if _, err := loadgen.Produce(ctx, loadgen.ProduceOptions{Brokers: stack.Brokers, Topic: "two", CreateTopic: true, Partitions: 2, Records: 1}); err != nil {
		t.Fatal(err)
	}
	err = Read(ctx, Options{Brokers: stack.Brokers, Topic: "two", Partition: 5}, func(Message) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "partitions 0 to 1") {
		t.Errorf("missing partition: %v", err)
	}
	err = Read(ctx, Options{Brokers: stack.Brokers, Topic: "two", Partition: -1, From: "yesterday"}, func(Message) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("bad --from: %v", err)
	}
}

// A topic written transactionally ends with a commit marker, which takes
// an offset but is no record: --until-end used to wait for it forever.
func TestTailUntilEndStopsAfterATransactionMarker(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	ctx := context.Background()
	if _, err := loadgen.Produce(ctx, loadgen.ProduceOptions{Brokers: stack.Brokers, Topic: "txn", CreateTopic: true, Partitions: 1, Records: 1}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...), kgo.TransactionalID("tail-test"), kgo.DefaultProduceTopic("txn"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(`{"in":"txn"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, Options{Brokers: stack.Brokers, Topic: "txn", Partition: -1, From: "earliest", UntilEnd: true})
	if len(got) != 2 || string(got[1].Value) != `{"in":"txn"}` {
		t.Errorf("read %+v, want the two records and no marker", got)
	}
}
