package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestRecordsProducesExactlyNAckedRecords(t *testing.T) {
	brokers := startBroker(t, kfake.SeedTopics(6, "exact"))
	res, err := Produce(context.Background(), ProduceOptions{
		Brokers: brokers, Topic: "exact", Records: 20011, Connections: 4, Size: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 20011 || res.Errors != 0 {
		t.Fatalf("acked %d records with %d errors (%v), want 20011 and 0", res.Records, res.Errors, res.ErrorSummary())
	}
	if res.Bytes != 20011*64 {
		t.Errorf("bytes %d, want %d", res.Bytes, 20011*64)
	}
	if got := endOffsetTotal(t, brokers, "exact"); got != 20011 {
		t.Errorf("topic holds %d records, want 20011", got)
	}
	if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max {
		t.Errorf("latencies out of order: p50 %v p99 %v max %v", res.P50, res.P99, res.Max)
	}
	var sampled int64
	for _, s := range res.Samples {
		sampled += s.Records
	}
	if sampled != res.Records {
		t.Errorf("samples add up to %d records, the total is %d", sampled, res.Records)
	}
}

func TestKeysCycleThroughExactlyKeysDistinctValuesAndJSONIsValid(t *testing.T) {
	// The topic does not exist: CreateTopic makes it.
	res, records := produceAndRead(t, ProduceOptions{
		Brokers: startBroker(t), Topic: "keyed", CreateTopic: true, Partitions: 3,
		Records: 3000, Keys: 37, Connections: 3, Format: FormatJSON, Size: 300,
	})
	if res.Records != 3000 {
		t.Fatalf("acked %d, want 3000", res.Records)
	}
	keys := map[string]int{}
	for _, r := range records {
		keys[string(r.Key)]++
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value is not JSON: %v: %s", err, r.Value)
		}
		if v["key"] != string(r.Key) || v["kind"] == nil || v["amount"] == nil {
			t.Fatalf("value lacks the event fields or its key: %s", r.Value)
		}
		if len(r.Value) < 290 || len(r.Value) > 310 {
			t.Fatalf("value is %d bytes, want about 300: %s", len(r.Value), r.Value)
		}
	}
	if len(keys) != 37 {
		t.Fatalf("%d distinct keys, want 37", len(keys))
	}
	for k, n := range keys {
		// 3000 records over 37 keys in turn: 81 or 82 each.
		if n < 81 || n > 82 {
			t.Errorf("key %s used %d times, want 81 or 82", k, n)
		}
	}
}

func TestRateHoldsTheConfiguredRateOverConnections(t *testing.T) {
	res, records := produceAndRead(t, ProduceOptions{
		Brokers: startBroker(t, kfake.SeedTopics(4, "paced")), Topic: "paced",
		Profile: Profile{Rate: 2000}, Duration: 3 * time.Second, Connections: 3, Keys: 100,
	})
	// 6,000 at 2,000/s for 3 s; the limiter's burst is 20 records, so
	// never more. A producer starved by a loaded machine (CI under -race)
	// falls behind and does not catch up, so at least half.
	if res.Records < 3000 || res.Records > 6100 {
		t.Fatalf("acked %d records in 3 s at 2000/s, want about 6000 (3000 to 6100)", res.Records)
	}
	// No half second holds more than the rate allows: three connections
	// each take their share rather than the full rate.
	for i, n := range perBucket(res, records, 500*time.Millisecond) {
		if n > 1000+100 {
			t.Errorf("%d records produced in half second %d, the rate allows 1000", n, i)
		}
	}
}

func TestBurstyProfileProducesBurstsAndQuietPeriods(t *testing.T) {
	res, records := produceAndRead(t, ProduceOptions{
		Brokers: startBroker(t, kfake.SeedTopics(2, "bursty")), Topic: "bursty",
		Duration: 4500 * time.Millisecond, Connections: 2,
		Profile: Profile{Kind: ProfileBursty, BurstRate: 4000, BurstDuration: 500 * time.Millisecond, BurstEvery: 2 * time.Second},
	})
	// Bursts at 0-0.5 s, 2-2.5 s and 4-4.5 s, 2,000 records each; silent
	// otherwise.
	if res.Records < 2500 || res.Records > 6200 {
		t.Fatalf("acked %d records, want about 6000 in three bursts", res.Records)
	}
	counts := perBucket(res, records, 250*time.Millisecond)
	var inBursts int
	bursts := 0
	for _, b := range []int{0, 8, 16} {
		n := 0
		for i := b; i < min(b+3, len(counts)); i++ {
			n += counts[i]
		}
		inBursts += n
		// A burst is 2,000 records; a CI run with every core busy
		// produced 720 in the first one (the pacer does not catch up on
		// what a starved producer missed). Quiet periods are the point.
		if n >= 400 {
			bursts++
		}
	}
	if bursts != 3 {
		t.Errorf("%d bursts seen in 250 ms buckets %v, want 3", bursts, counts)
	}
	for _, quiet := range [][2]int{{3, 7}, {11, 15}} {
		for i := quiet[0]; i <= quiet[1] && i < len(counts); i++ {
			if counts[i] != 0 {
				t.Errorf("%d records in quiet bucket %d: %v", counts[i], i, counts)
			}
		}
	}
	if inBursts != int(res.Records) {
		t.Errorf("%d of %d records inside bursts: %v", inBursts, res.Records, counts)
	}
}

func TestProduceRefusesAMissingTopicAndBadOptions(t *testing.T) {
	brokers := startBroker(t)
	_, err := Produce(context.Background(), ProduceOptions{Brokers: brokers, Topic: "nope", Records: 1})
	if err == nil || !strings.Contains(err.Error(), "--create-topic") {
		t.Fatalf("missing topic: %v", err)
	}
	_, err = Produce(context.Background(), ProduceOptions{
		Brokers: brokers, Topic: "t", Acks: "2", Compression: "brotli", Format: "xml",
		Profile: Profile{Kind: ProfileBursty, BurstDuration: time.Minute, BurstEvery: time.Second},
	})
	for _, want := range []string{"--duration", "--acks", "--compression", "--format", "--burst-every"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad options: error %v does not name %s", err, want)
		}
	}
}

func TestReportOfALoadRunIsSelfContained(t *testing.T) {
	res := ProduceResult{
		Options: ProduceOptions{Topic: "orders", Brokers: []string{"b:9092"}, SampleEvery: time.Second},
		Records: 13, Elapsed: 2 * time.Second,
		Samples: []ProduceSample{
			{Elapsed: time.Second, Records: 1, Bytes: 100, P50: time.Millisecond, P99: 2 * time.Millisecond},
			{Elapsed: 2 * time.Second, Records: 2, Bytes: 200, P50: 3 * time.Millisecond, P99: 4 * time.Millisecond},
			// The run ended 100 ms into the next interval.
			{Elapsed: 2100 * time.Millisecond, Records: 20, Bytes: 2000, P50: 3 * time.Millisecond, P99: 5 * time.Millisecond},
		},
	}
	var b bytes.Buffer
	if err := WriteReport(&b, ProduceReport(res)); err != nil {
		t.Fatal(err)
	}
	charts := reportData(t, b.String())
	// The short last interval is folded into the one before, not drawn
	// as a spike of 200 records/s.
	if got := charts[0].Series[0].Points; len(got) != 2 || got[0] != 1 || got[1] != 20 {
		t.Errorf("rate points %v, want [1 20]", got)
	}
	if got := charts[1].Series[1]; got.Name != "p99" || got.Points[1] != 4 {
		t.Errorf("p99 series %+v, want 4 ms at 2 s", got)
	}
	// Bytes/s beside records/s, folded the same way.
	if got := charts[2].Series[0].Points; len(got) != 2 || got[0] != 100 || math.Abs(got[1]-2000) > 1e-6 {
		t.Errorf("byte rate points %v, want [100 2000]", got)
	}
}
