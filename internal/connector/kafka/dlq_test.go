package kafka

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// newDLQCluster starts an in-process broker with opts and a DeadLetter
// producing to "{{.Topic}}.dlq" on it.
func newDLQCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *DeadLetter) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d, err := NewDeadLetter(context.Background(), config.KafkaConn{Brokers: c.ListenAddrs()}, "{{.Topic}}.dlq", "pipe", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return c, d
}

// createTopic makes topic with a max.message.bytes of its own.
func createTopic(t *testing.T, c *kfake.Cluster, topic string, maxBytes int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v := strconv.Itoa(maxBytes)
	resp, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &v}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

// readOne reads the one record of topic.
func readOne(t *testing.T, c *kfake.Cluster, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) == 0 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		got = append(got, fs.Records()...)
	}
	if len(got) != 1 {
		t.Fatalf("%s holds %d records, want 1", topic, len(got))
	}
	return got[0]
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// badRecord is a record of topic with a value of n random bytes, a key of k bytes
// and one header of its own.
func badRecord(topic string, n, k int) *connector.Record {
	random := rand.NewChaCha8([32]byte{}) // incompressible: a compressed batch is as large
	value, key := make([]byte, n), make([]byte, k)
	_, _ = random.Read(value)
	_, _ = random.Read(key)
	return &connector.Record{Topic: topic, Partition: 3, Offset: 42, Timestamp: time.UnixMilli(1700000000000),
		Key: key, Value: value, Headers: []connector.Header{{Key: "trace", Value: []byte("t-1")}}}
}

func sendWithin(t *testing.T, d *DeadLetter, rec *connector.Record) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reason := &connector.RecordError{Record: rec, Reason: "too_many_columns", Err: errors.New("table t: 2000 fields")}
	err := d.Send(ctx, rec, reason)
	if ctx.Err() != nil {
		t.Fatalf("Send was still retrying after 30s: %v", err)
	}
	return err
}

// Regression: a bad record over the dead-letter topic's max message size
// (about 1 MB by default) failed with MESSAGE_TOO_LARGE, which was retried
// forever and stalled the partition. It is now cut to fit, and the headers
// say so, with the original's size and SHA-256 next to the usual reason and
// origin headers.
func TestDeadLetterTooLargeForKafkaIsCutToFit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		topicMax      int // 0: the defaults (the producer's 1,000,012 bytes)
		value, key    int
		wantKey       bool
		wantValueUpTo int
		wantValueOver int // as much as fits is kept
		wantCut       string
	}{
		{name: "over the topic's max.message.bytes", topicMax: 20000, value: 100000, key: 10, wantKey: true, wantValueUpTo: 20000, wantValueOver: 15000, wantCut: "value truncated to"},
		{name: "over the producer's max message bytes", value: 1500000, key: 10, wantKey: true, wantValueUpTo: 1000012, wantValueOver: 900000, wantCut: "value truncated to"},
		{name: "key too large as well", topicMax: 20000, value: 100000, key: 30000, wantValueUpTo: 0, wantCut: "key of 30000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, d := newDLQCluster(t)
			rec := badRecord("films", tc.value, tc.key)
			if tc.topicMax > 0 {
				createTopic(t, c, "films.dlq", tc.topicMax)
			}
			if err := sendWithin(t, d, rec); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := readOne(t, c, "films.dlq")
			if len(got.Value) > tc.wantValueUpTo || len(got.Value) < tc.wantValueOver || !bytes.HasPrefix(rec.Value, got.Value) {
				t.Fatalf("value of %d bytes, want a prefix of the original of %d to %d bytes", len(got.Value), tc.wantValueOver, tc.wantValueUpTo)
			}
			if tc.wantKey != bytes.Equal(got.Key, rec.Key) {
				t.Errorf("key of %d bytes kept = %v, want %v", len(got.Key), !tc.wantKey, tc.wantKey)
			}
			sum := sha256.Sum256(rec.Value)
			for key, want := range map[string]string{
				HeaderTruncated:      "true",
				HeaderOriginalSize:   fmt.Sprint(tc.value),
				HeaderOriginalSHA256: hex.EncodeToString(sum[:]),
				HeaderReason:         "too_many_columns",
				HeaderTopic:          "films",
				HeaderPartition:      "3",
				HeaderOffset:         "42",
				HeaderPipeline:       "pipe",
			} {
				if v, _ := header(got, key); v != want {
					t.Errorf("header %s = %q, want %q", key, v, want)
				}
			}
			if v, _ := header(got, HeaderCut); !bytes.Contains([]byte(v), []byte(tc.wantCut)) {
				t.Errorf("header %s = %q, want it to say %q", HeaderCut, v, tc.wantCut)
			}
			if _, ok := header(got, "trace"); ok != tc.wantKey {
				t.Errorf("original header kept = %v, want %v", ok, tc.wantKey)
			}
		})
	}
}

// A dead letter Kafka refuses for good (here: not even its own headers fit
// the topic) is a permanent error, returned at once, not retried forever.
func TestDeadLetterThatCannotFitIsPermanent(t *testing.T) {
	c, d := newDLQCluster(t)
	createTopic(t, c, "films.dlq", 200)
	err := sendWithin(t, d, badRecord("films", 5000, 10))
	if !connector.IsPermanent(err) {
		t.Fatalf("Send: %v, want a permanent error", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("films.dlq")) || !bytes.Contains([]byte(err.Error()), []byte("MESSAGE_TOO_LARGE")) {
		t.Errorf("%q does not name the topic and Kafka's error", err)
	}
}

// A dead letter the producer is not authorized to write (an ACL allows
// it to see the topic, not to write to it) is permanent, not retried
// forever; the topic existing already while creating it is refused too is
// fine.
func TestDeadLetterNotAuthorizedIsPermanent(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", "dlq", "pw", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "films.dlq",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(context.Background(), 1, 1, nil, "films.dlq"); err != nil {
		t.Fatal(err)
	}
	conn := config.KafkaConn{Brokers: c.ListenAddrs(), SASL: &config.SASL{Mechanism: "PLAIN", Username: "dlq", Password: "pw"}}
	d, err := NewDeadLetter(context.Background(), conn, "{{.Topic}}.dlq", "pipe", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	err = sendWithin(t, d, badRecord("films", 10, 1))
	if !connector.IsPermanent(err) || !bytes.Contains([]byte(err.Error()), []byte("AUTHORIZATION")) {
		t.Fatalf("Send: %v, want a permanent authorization error", err)
	}
}
