package devstack

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// value returns the value of the series line starting with series.
func value(t *testing.T, page, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no series %s in:\n%s", series, page)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The dev broker's metrics name topics (clients of Kafka 4 send topic IDs
// in produce and fetch), count record bytes both ways, and count
// connections up and down again, under the JMX exporter's names.
func TestDevBrokerMetricsCountPerTopicAndConnections(t *testing.T) {
	s, err := Start(context.Background(), Options{Brokers: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ClientID("films-loader"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ConsumeTopics("films"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "films"); err != nil {
		t.Fatal(err)
	}
	value100 := strings.Repeat("x", 100)
	for i := range 50 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "films", Value: []byte(value100 + strconv.Itoa(i%10))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for read := 0; read < 50 && ctx.Err() == nil; {
		read += cl.PollFetches(ctx).NumRecords()
	}
	page := scrape(t, s.MetricsURL)
	in, out := 0.0, 0.0
	for b := range 3 {
		broker := strconv.Itoa(b)
		if strings.Contains(page, `kafka_server_brokertopicmetrics_bytesin_total{broker="`+broker+`",topic="films"}`) {
			in += value(t, page, `kafka_server_brokertopicmetrics_bytesin_total{broker="`+broker+`",topic="films"}`)
			out += value(t, page, `kafka_server_brokertopicmetrics_bytesout_total{broker="`+broker+`",topic="films"}`)
		}
	}
	// 50 single-record batches of 101 bytes of value, uncompressed (the
	// broker counts batches as they come, compressed or not).
	if in < 50*101 || in > 50*200 {
		t.Errorf("bytes in for films %v, want 50 batches of a 101-byte value", in)
	}
	if out < in {
		t.Errorf("bytes out %v after reading everything that came in (%v)", out, in)
	}
	if strings.Contains(page, `topic="unknown"`) {
		t.Errorf("a topic is counted by ID only:\n%s", page)
	}
	if !strings.Contains(page, `kafka_network_requestmetrics_requests_total{broker=`) ||
		!regexp.MustCompile(`sluice_broker_requests_by_client_total\{broker="\d",client_id="films-loader",request="Produce"\} 50`).MatchString(page) {
		t.Errorf("produce requests of films-loader not counted as 50:\n%s", page)
	}
	connections := func(page string) float64 {
		n := 0.0
		for b := range 3 {
			n += value(t, page, `kafka_server_socket_server_metrics_connection_count{broker="`+strconv.Itoa(b)+`",listener="PLAINTEXT"}`)
		}
		return n
	}
	if n := connections(page); n < 1 {
		t.Fatalf("%v connections open while a client is connected", n)
	}
	cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for connections(scrape(t, s.MetricsURL)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connections still counted open after the only client closed:\n%s", scrape(t, s.MetricsURL))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A taken metrics port moves the metrics to a free one instead of
// stopping the dev stack: they are an aid, the broker is the point.
func TestDevStackStartsWhenTheMetricsPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	port := taken.Addr().(*net.TCPAddr).Port
	s, err := Start(context.Background(), Options{MetricsPort: port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("starting with the metrics port taken: %v", err)
	}
	t.Cleanup(s.Close)
	if strings.Contains(s.MetricsURL, ":"+strconv.Itoa(port)+"/") {
		t.Fatalf("metrics at %s, on the taken port", s.MetricsURL)
	}
	if page := scrape(t, s.MetricsURL); !strings.Contains(page, "sluice_broker_cpu_cores") {
		t.Errorf("no broker metrics at %s:\n%s", s.MetricsURL, page)
	}
}
