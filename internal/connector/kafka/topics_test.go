package kafka

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startCluster(t *testing.T, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func topicAdmin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// partitionsOf returns how many partitions topic has, 0 when it does not
// exist.
func partitionsOf(t *testing.T, adm *kadm.Client, topic string) int {
	t.Helper()
	details, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return 0
	}
	return len(d.Partitions)
}

func sinkConfig(brokers []string, topic string) config.KafkaSink {
	return config.KafkaSink{KafkaConn: config.KafkaConn{Brokers: brokers}, Topic: topic, Acks: "all", BatchBytes: 1 << 20}
}

func openSink(t *testing.T, cfg config.KafkaSink) *Sink {
	t.Helper()
	s, err := NewSink(context.Background(), cfg, SinkOptions{Pipeline: "topics"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestSinkRefusesToStartWhenItsTopicDoesNotExist: the sink used to start
// and retry UNKNOWN_TOPIC_OR_PARTITION forever without naming the topic.
func TestSinkRefusesToStartWhenItsTopicDoesNotExist(t *testing.T) {
	brokers := startCluster(t)
	_, err := NewSink(context.Background(), sinkConfig(brokers, "orders-copy"), SinkOptions{Pipeline: "topics"})
	if err == nil {
		t.Fatal("the sink started with a topic that does not exist")
	}
	for _, want := range []string{`topic "orders-copy" does not exist on brokers ` + brokers[0], "sink.kafka.create_topic", "sluice dev --auto-create-topics"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !connector.IsPermanent(err) {
		t.Errorf("error %v is not permanent", err)
	}
	if n := partitionsOf(t, topicAdmin(t, brokers), "orders-copy"); n != 0 {
		t.Fatalf("the topic was created (%d partitions) without create_topic", n)
	}
}

func TestSinkCreatesItsTopicWithCreateTopic(t *testing.T) {
	brokers := startCluster(t)
	cfg := sinkConfig(brokers, "orders-copy")
	cfg.CreateTopic = &config.CreateTopic{Partitions: 3, ReplicationFactor: 1}
	s := openSink(t, cfg)
	adm := topicAdmin(t, brokers)
	if n := partitionsOf(t, adm, "orders-copy"); n != 3 {
		t.Fatalf("orders-copy has %d partitions, want 3", n)
	}
	// A second process (or a restart) finds it there: no error.
	openSink(t, cfg)
	if err := s.Write(context.Background(), []*connector.Record{{Topic: "orders", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if ends, err := adm.ListEndOffsets(context.Background(), "orders-copy"); err != nil {
		t.Fatal(err)
	} else {
		total := int64(0)
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		if total != 1 {
			t.Fatalf("orders-copy holds %d records, want 1", total)
		}
	}
}

// TestSinkTopicsAreCreatedByBrokersThatAutoCreate: against `sluice dev
// --auto-create-topics` (a broker with auto.create.topics.enable) the
// static and the rendered topics are created on demand, as for a Java
// producer.
func TestSinkTopicsAreCreatedByBrokersThatAutoCreate(t *testing.T) {
	brokers := startCluster(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	openSink(t, sinkConfig(brokers, "static-out"))
	s := openSink(t, sinkConfig(brokers, "copy-{{.Topic}}"))
	if err := s.Write(context.Background(), []*connector.Record{{Topic: "orders", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	adm := topicAdmin(t, brokers)
	for _, topic := range []string{"static-out", "copy-orders"} {
		if n := partitionsOf(t, adm, topic); n != 2 {
			t.Errorf("%s has %d partitions, want 2 (auto-created)", topic, n)
		}
	}
}

func TestRenderedTopicsAreCreatedOnFirstUseWithCreateTopic(t *testing.T) {
	brokers := startCluster(t)
	cfg := sinkConfig(brokers, "copy-{{.Topic}}")
	cfg.CreateTopic = &config.CreateTopic{Partitions: 4}
	s := openSink(t, cfg)
	recs := []*connector.Record{{Topic: "orders", Value: []byte("1")}, {Topic: "payments", Value: []byte("2")}, {Topic: "orders", Value: []byte("3")}}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	adm := topicAdmin(t, brokers)
	for _, topic := range []string{"copy-orders", "copy-payments"} {
		if n := partitionsOf(t, adm, topic); n != 4 {
			t.Errorf("%s has %d partitions, want 4", topic, n)
		}
	}
}

// TestRenderedTopicThatDoesNotExistIsNamed: the produce error said
// UNKNOWN_TOPIC_OR_PARTITION and nothing else.
func TestRenderedTopicThatDoesNotExistIsNamed(t *testing.T) {
	brokers := startCluster(t)
	s := openSink(t, sinkConfig(brokers, "copy-{{.Topic}}"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := s.Write(ctx, []*connector.Record{{Topic: "orders", Value: []byte("v")}})
	if err == nil || !strings.Contains(err.Error(), `topic "copy-orders" does not exist on brokers `+brokers[0]) || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("Write returned %v; want an error naming copy-orders", err)
	}
}

// TestRenderedInvalidTopicNameIsTheRecordsProblem: a template rendering a
// name Kafka refuses (a space) was retried forever as UNKNOWN_TOPIC; it is
// the record's problem, routed by on_error, and the rest is written.
func TestRenderedInvalidTopicNameIsTheRecordsProblem(t *testing.T) {
	brokers := startCluster(t)
	adm := topicAdmin(t, brokers)
	if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, "orders-eu"); err != nil {
		t.Fatal(err)
	}
	s := openSink(t, sinkConfig(brokers, "{{.Key}}"))
	bad := &connector.Record{Topic: "in", Offset: 7, Key: []byte("orders eu"), Value: []byte("b")}
	good := &connector.Record{Topic: "in", Offset: 8, Key: []byte("orders-eu"), Value: []byte("g")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := s.Write(ctx, []*connector.Record{bad, good})
	var be *connector.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 {
		t.Fatalf("Write returned %v; want a BatchError with one record", err)
	}
	re := be.Failed[0]
	if re.Record != bad || re.Reason != "topic" || !strings.Contains(re.Error(), `rendered topic "orders eu" contains ' '`) {
		t.Fatalf("rejected %+v: %v", re.Record, re)
	}
	ends, err := adm.ListEndOffsets(context.Background(), "orders-eu")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("orders-eu", 0); o.Offset != 1 {
		t.Fatalf("orders-eu holds %d records, want the good one", o.Offset)
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSourceWarnsAboutATopicThatDoesNotExist: the client waited for it
// silently, so a typo looked like a quiet topic.
func TestSourceWarnsAboutATopicThatDoesNotExist(t *testing.T) {
	brokers := startCluster(t)
	adm := topicAdmin(t, brokers)
	if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, "present"); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	src, err := NewSource(config.KafkaSource{KafkaConn: config.KafkaConn{Brokers: brokers}, Topics: []string{"present", "orderz"}, Group: "g"},
		SourceOptions{Pipeline: "topics", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var readers []connector.Reader
	for _, member := range []string{"topics-1", "topics-2"} {
		rd, err := src.OpenReader(ctx, member)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Close(ctx) })
		readers = append(readers, rd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "source topic does not exist") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about orderz; logs:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "topic=orderz brokers="+brokers[0]) || strings.Contains(out, "topic=present") {
		t.Fatalf("warnings:\n%s", out)
	}
	// Both readers notice; the source warns once a minute at most.
	src.warnMissing("orderz")
	if n := strings.Count(logs.String(), "source topic does not exist"); n != 1 {
		t.Fatalf("%d warnings within a minute, want 1:\n%s", n, logs)
	}
	// Status shows it too, until the topic exists. Each reader looks on
	// its own, and the warning logged may have come from the other one, so
	// wait for this reader's look.
	var w []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		w = readers[0].(connector.Warner).Warnings()
		if len(w) == 1 && strings.Contains(w[0], `"orderz" does not exist`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status warnings %q; want the missing topic named", w)
		}
	}
}
