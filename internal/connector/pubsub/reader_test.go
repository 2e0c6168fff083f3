package pubsub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
)

// Receive ending on the server's refusal (the subscription was deleted)
// was logged and Receive opened again, forever, while Read waited in
// silence: the engine never saw an error, so max_retry_time never applied.
// Read returns each refusal once, as a transient error, and the reader
// reads again once the subscription is back.
func TestReadReturnsEachRefusalOfADeletedSubscription(t *testing.T) {
	ps := startProxiedPubSub(t)
	src, err := NewSource(context.Background(), config.PubSubSource{Subscription: ps.sub, EmulatorHost: ps.proxy.Addr(), KeyFrom: config.KeyFromNone,
		Streams: 2, MaxOutstandingMessages: 100, MaxOutstandingBytes: 1 << 20, MaxAckExtension: 10 * time.Second}, SourceOptions{Pipeline: "pubsub-refusal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(context.Background()) })
	r, err := src.OpenReader(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	read := func(wait time.Duration) ([]*connector.Record, error) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return r.Read(ctx, 10)
	}
	ps.srv.Publish(ps.topic, []byte("before"), nil)
	if recs, err := read(30 * time.Second); err != nil || len(recs) != 1 {
		t.Fatalf("read %d records, %v; want the message", len(recs), err)
	} else {
		r.Ack(recs)
	}

	if _, err := ps.srv.GServer.DeleteSubscription(context.Background(), &pubsubpb.DeleteSubscriptionRequest{Subscription: ps.sub}); err != nil {
		t.Fatal(err)
	}
	// pstest goes on serving the streams already open on a deleted
	// subscription: cut them, for the client to open new ones.
	ps.proxy.ResetAll()
	refused := func(what string) {
		t.Helper()
		recs, err := read(20 * time.Second)
		if len(recs) != 0 || err == nil || !strings.Contains(err.Error(), "NotFound") || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: read %d records, %v; want the server's NotFound", what, len(recs), err)
		}
		if connector.IsPermanent(err) {
			t.Fatalf("%s: %v is permanent; the subscription may come back, max_retry_time bounds the wait", what, err)
		}
	}
	refused("subscription deleted")
	// Once per refusal: Receive is tried again 1 s later.
	if recs, err := read(300 * time.Millisecond); len(recs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read at once after a refusal: %d records, %v; want nothing until the next refusal", len(recs), err)
	}
	refused("Receive tried again")

	if _, err := ps.srv.GServer.CreateSubscription(context.Background(), &pubsubpb.Subscription{Name: ps.sub, Topic: ps.topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	ps.srv.Publish(ps.topic, []byte("after"), nil)
	for deadline := time.Now().Add(30 * time.Second); ; {
		recs, err := read(time.Until(deadline))
		if err == nil && len(recs) == 1 && string(recs[0].Value) == "after" {
			break
		}
		// A refusal may still be on its way from before.
		if err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Fatalf("subscription back: read %d records, %v; want the message published since", len(recs), err)
		}
	}
}
