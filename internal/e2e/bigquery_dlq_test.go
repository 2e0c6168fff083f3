package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/connector/kafka"
)

// bqReadDLQ reads want records of a dead-letter topic, keyed by value.
func bqReadDLQ(t *testing.T, brokers []string, topic string, want int) map[string]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]*kgo.Record{}
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out[string(r.Value)] = r })
	}
	return out
}

func bqHeader(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestBigQueryRowErrorsGoToTheDeadLetterTopicWithTheReason: rows BigQuery
// refuses (a NUMERIC out of range, a REQUIRED column missing) and values
// that fit no column go to <topic>.dlq with the reason; the other rows of
// the same appends land.
func TestBigQueryRowErrorsGoToTheDeadLetterTopicWithTheReason(t *testing.T) {
	const n = 1000
	e, addrs, brokers, _ := bqPaymentsWithBadRows(t, n)
	r := bqRunPipeline(t, fmt.Sprintf(`
name: payments
source:
  kafka: {brokers: [%s], topics: [payments], group: payments-bq}
format: {value: json}
on_error: dlq
`, brokers[0])+bqSinkYAML(addrs, "payments", 2, ""))
	bqWaitCommitted(t, brokers, "payments-bq", "payments", 2*time.Minute)

	dlq := bqReadDLQ(t, brokers, "payments.dlq", 300)
	if len(dlq) != 300 {
		t.Fatalf("%d records in payments.dlq, want 300", len(dlq))
	}
	for _, rec := range dlq {
		v := string(rec.Value)
		reason, msg := bqHeader(rec, kafka.HeaderReason), bqHeader(rec, kafka.HeaderError)
		checkBadPayment(t, "dead letter", v, reason, msg)
		if bqHeader(rec, kafka.HeaderTopic) != "payments" || bqHeader(rec, kafka.HeaderOffset) == "" {
			t.Fatalf("dead letter without its original topic: %v", rec.Headers)
		}
	}
	ids, _ := bqRowsByID(t, e)
	if len(ids) != 700 {
		t.Fatalf("%d rows landed, want the 700 good ones", len(ids))
	}
	for id, c := range ids {
		if id%10 == 3 || id%10 == 5 || id%10 == 7 || c != 1 {
			t.Fatalf("id %d landed %d times", id, c)
		}
	}
	if st := r.p.Status(); st.DeadLettered != 300 || st.Error != "" {
		t.Fatalf("pipeline: %d dead-lettered, error %q", st.DeadLettered, st.Error)
	}
}

// checkBadPayment checks the reason and error a bad record of the payments
// tests was routed with: BigQuery's row error for an out-of-range amount
// or a missing id, the sink's type error for an amount that is a word.
func checkBadPayment(t *testing.T, where, value, reason, msg string) {
	t.Helper()
	var wantReason, wantMsg string
	switch {
	case strings.Contains(value, "1e40"):
		wantReason, wantMsg = "row", "out of range"
	case !strings.Contains(value, `"id"`):
		wantReason, wantMsg = "row", "required field is missing"
	case strings.Contains(value, "lots"):
		wantReason, wantMsg = "type", `field amount: the string "lots" does not fit a NUMERIC column`
	default:
		t.Fatalf("good record %s went to the %s: %s", value, where, msg)
	}
	if reason != wantReason || !strings.Contains(msg, wantMsg) {
		t.Fatalf("%s %s: reason %q, error %q; want reason %q and %q", where, value, reason, msg, wantReason, wantMsg)
	}
}
