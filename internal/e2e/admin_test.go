package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// serveAdmin serves the admin API and dashboard for b on a loopback port
// until ctx ends or the test does, and returns its base URL.
func serveAdmin(t testing.TB, ctx context.Context, b *assembly.Built, sampleEvery time.Duration, log *slog.Logger) string {
	t.Helper()
	srv, err := admin.New(admin.Options{
		Pipelines:   []admin.Pipeline{{Pipeline: b.Pipeline, Config: b.Config, Source: b.Source, Sink: b.Sink}},
		Logger:      log,
		SampleEvery: sampleEvery,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// apiCall sends a JSON request to the admin API and decodes the answer
// into out (when not nil); it returns the status code.
func apiCall(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, url, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func pipelineDetail(t *testing.T, base, name string) admin.Detail {
	t.Helper()
	var d admin.Detail
	if code := apiCall(t, "GET", base+"/v1/pipelines/"+name+"?series=0", "", &d); code != 200 {
		t.Fatalf("GET %s: %d", name, code)
	}
	return d
}

// produceSteadily writes values {"id":i,...} for i = 0, 1, ... at about
// perSecond records a second (in chunks, each flushed) until enough says
// so, and returns how many it wrote.
func produceSteadily(ctx context.Context, brokers []string, topic string, perSecond int, enough func(produced int) bool) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MaxBufferedRecords(perSecond), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	errc := make(chan error, 1)
	chunk := max(perSecond/10, 1)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	produced := 0
	for !enough(produced) {
		for i := produced; i < produced+chunk; i++ {
			r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000))}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return produced, err
		}
		select {
		case err := <-errc:
			return produced, fmt.Errorf("producing: %w", err)
		default:
		}
		produced += chunk
		select {
		case <-tick.C:
		case <-ctx.Done():
			return produced, ctx.Err()
		}
	}
	return produced, nil
}

// TestLivePropertyChangesUnderLoad changes max.poll.records twice (with
// fetch.max.wait.ms the second time) and adds and removes a consumer
// through the admin API while records keep arriving (100,000 records, or
// 300,000 with SLUICE_LONG=1, more when the steps are slow): every record
// must arrive, the change must show in status, and every offset must end
// up committed.
func TestLivePropertyChangesUnderLoad(t *testing.T) {
	n := 100000
	if os.Getenv("SLUICE_LONG") != "" {
		n = 300000
	}
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "in", 6)
	createTopic(t, brokers, "out", 6)
	p := parsePipeline(t, fmt.Sprintf(`
name: live
source:
  kafka: {brokers: [%s], topics: [in], group: live, consumers: 2, properties: {max.poll.records: 200, auto.commit.interval.ms: 200}}
batch: {max_records: 2000}
sink:
  kafka: {brokers: [%s], topic: out}
`, brokers[0], brokers[0]))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	base := serveAdmin(t, ctx, b, 250*time.Millisecond, testLogger(t))
	url := base + "/v1/pipelines/live"

	// Records arrive at n/10 a second until every step is done and at
	// least n were written: every step happens under load.
	var stepsDone atomic.Bool
	type result struct {
		n   int
		err error
	}
	produced := make(chan result, 1)
	go func() {
		total, err := produceSteadily(ctx, brokers, "in", n/10, func(k int) bool { return stepsDone.Load() && k >= n })
		produced <- result{total, err}
	}()

	out := func() int64 { return b.Pipeline.Status().RecordsOut }
	// Each step waits for a share of the records to be written and checks
	// that records are still to come, so it happens under load.
	step := func(share float64, what string, do func()) {
		t.Helper()
		eventually(t, 120*time.Second, fmt.Sprintf("%.0f%% of the records written before %s", share*100, what), func() bool { return out() >= int64(share*float64(n)) })
		start := time.Now()
		do()
		t.Logf("%s at %d records out took %v", what, out(), time.Since(start).Round(time.Millisecond))
	}
	type propsAnswer struct {
		Properties     map[string]any `json:"properties"`
		MaxPollRecords int            `json:"max_poll_records"`
	}
	patch := func(body string, wantMaxPoll int) {
		var got propsAnswer
		if code := apiCall(t, "PATCH", url+"/properties", body, &got); code != 200 {
			t.Fatalf("PATCH %s: %d", body, code)
		}
		if got.MaxPollRecords != wantMaxPoll || got.Properties["max.poll.records"] != float64(wantMaxPoll) {
			t.Fatalf("PATCH %s answered %+v, want max.poll.records %d", body, got, wantMaxPoll)
		}
		d := pipelineDetail(t, base, "live")
		if d.MaxPollRecords != wantMaxPoll || d.Properties["max.poll.records"] != float64(wantMaxPoll) {
			t.Fatalf("status after PATCH %s: max_poll_records %d, properties %v", body, d.MaxPollRecords, d.Properties)
		}
	}

	var before []pipeline.ConsumerStatus
	eventually(t, 30*time.Second, "the pipeline to run with its two consumers", func() bool {
		d := pipelineDetail(t, base, "live")
		before = d.Consumers
		return d.State == pipeline.StateRunning && len(before) == 2
	})
	step(0.05, "raising max.poll.records to 1000", func() { patch(`{"max.poll.records": 1000}`, 1000) })
	step(0.15, "adding a consumer", func() {
		var got map[string]string
		if code := apiCall(t, "POST", url+"/consumers", `{"name": "burst"}`, &got); code != 201 || got["id"] != "burst" {
			t.Fatalf("adding consumer burst: %d %v", code, got)
		}
		eventually(t, 60*time.Second, "burst to be assigned partitions", func() bool {
			for _, c := range pipelineDetail(t, base, "live").Consumers {
				if c.ID == "burst" && len(c.Assigned) > 0 {
					return true
				}
			}
			return false
		})
	})
	step(0.25, "raising max.poll.records to 5000 and lowering fetch.max.wait.ms", func() {
		patch(`{"max.poll.records": 5000, "fetch.max.wait.ms": 100}`, 5000)
	})
	step(0.35, "removing the consumer", func() {
		if code := apiCall(t, "DELETE", url+"/consumers/burst", "", nil); code != 200 {
			t.Fatalf("removing consumer burst: %d", code)
		}
	})

	stepsDone.Store(true)
	res := <-produced
	if res.err != nil {
		t.Fatal(res.err)
	}
	n = res.n
	eventually(t, 120*time.Second, "every record written", func() bool { return out() >= int64(n) })
	adm := adminClient(t, brokers)
	ends := endOffsets(t, adm, "in")
	eventually(t, 30*time.Second, "committed offsets to reach the end offsets", func() bool {
		got := committed(t, adm, "live", "in")
		for p, end := range ends {
			if got[p] != end {
				return false
			}
		}
		return true
	})

	final := pipelineDetail(t, base, "live")
	if final.MaxPollRecords != 5000 || final.Properties["fetch.max.wait.ms"] != float64(100) || final.Properties["auto.commit.interval.ms"] != float64(200) {
		t.Fatalf("final properties %v (max poll %d): want the last change merged over the file's", final.Properties, final.MaxPollRecords)
	}
	if len(final.Consumers) != 2 || final.Consumers[0].ID != before[0].ID || final.Consumers[1].ID != before[1].ID {
		t.Fatalf("consumers at the end %+v, want the two from the start", final.Consumers)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var written int64
	for _, end := range endOffsets(t, adm, "out") {
		written += end
	}
	seen := consumeAll(t, brokers, "out", int(written), 60*time.Second)
	for i := 0; i < n; i++ {
		v := fmt.Sprintf(`{"id":%d,"name":"item %d","price":%d.5}`, i, i, i%1000)
		if seen[v] == 0 {
			t.Fatalf("record %d never arrived (%d distinct of %d)", i, len(seen), n)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records at the sink, want %d", len(seen), n)
	}
	t.Logf("%d records, %d written (%d duplicates from restarts and rebalances, allowed at least once)", n, written, written-int64(n))
}
