package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// fixture is a server over two running pipelines: "films" (Kafka-like
// properties, two consumers, a sink that merges) and "plain" (no
// properties, no merge, one consumer).
type fixture struct {
	srv       *Server
	http      *httptest.Server
	films     *pipeline.Pipeline
	filmsSrc  *propSource
	filmsSink *mergeSink
	plain     *pipeline.Pipeline
	plainSink *countSink
	token     string
}

func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	f := &fixture{token: token}
	f.filmsSrc = newPropSource(1000, map[string]any{"max.poll.records": 100, "fetch.max.wait.ms": 500})
	f.filmsSink = &mergeSink{}
	f.films = startPipeline(t, "films", f.filmsSrc, f.filmsSink, 2)
	f.plainSink = &countSink{}
	f.plain = startPipeline(t, "plain", plainSource{newPropSource(500, nil)}, f.plainSink, 1)
	filmsCfg := config.Pipeline{
		Name: "films",
		Source: config.Source{Kafka: &config.KafkaSource{
			KafkaConn: config.KafkaConn{Brokers: []string{"b:9092"}, SASL: &config.SASL{Mechanism: "PLAIN", Username: "films", Password: "hunter2"}},
			Topics:    []string{"films"}, Group: "films", Consumers: 2,
			Properties: map[string]any{"max.poll.records": 100, "fetch.max.wait.ms": 500},
		}},
		Batch:           config.Batch{MaxRecords: 100, Linger: 50 * time.Millisecond},
		ShutdownTimeout: 30 * time.Second,
	}
	srv, err := New(Options{
		Pipelines: []Pipeline{
			{Pipeline: f.films, Config: filmsCfg, Source: f.filmsSrc, Sink: f.filmsSink},
			{Pipeline: f.plain, Config: config.Pipeline{Name: "plain"}, Sink: f.plainSink},
		},
		Token:  token,
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv.Handler())
	t.Cleanup(f.http.Close)
	waitFor(t, "records written", func() bool { return f.filmsSink.written.Load() == 1000 && f.plainSink.written.Load() == 500 })
	waitForRecordsOut(t, f.films, 1000)
	waitForRecordsOut(t, f.plain, 500)
	return f
}

// do sends a request (with the fixture's token unless auth is false) and
// decodes the JSON answer into out, when given. It returns the status.
func (f *fixture) do(t *testing.T, method, path, body string, auth bool, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth && f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(path, "/v1/") && resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json (body %s)", method, path, resp.Header.Get("Content-Type"), b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error string `json:"error"`
}

// expectError checks the status and that the JSON error mentions want.
func (f *fixture) expectError(t *testing.T, method, path, body string, code int, want string) {
	t.Helper()
	var e apiError
	if got := f.do(t, method, path, body, true, &e); got != code {
		t.Fatalf("%s %s %s: status %d (%q), want %d", method, path, body, got, e.Error, code)
	}
	if !strings.Contains(e.Error, want) {
		t.Fatalf("%s %s %s: error %q does not mention %q", method, path, body, e.Error, want)
	}
}

func TestListPipelines(t *testing.T) {
	f := newFixture(t, "")
	var list struct{ Pipelines []Summary }
	if code := f.do(t, "GET", "/v1/pipelines", "", false, &list); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(list.Pipelines) != 2 || list.Pipelines[0].Name != "films" || list.Pipelines[1].Name != "plain" {
		t.Fatalf("pipelines %+v, want films and plain in file order", list.Pipelines)
	}
	films := list.Pipelines[0]
	if films.State != pipeline.StateRunning || films.Consumers != 2 || films.RecordsOut != 1000 || !films.CanMerge {
		t.Fatalf("films summary %+v", films)
	}
	if list.Pipelines[1].CanMerge {
		t.Fatal("plain's sink has no merge but can_merge is true")
	}
}

func TestGetPipeline(t *testing.T) {
	f := newFixture(t, "")
	if err := f.filmsSink.MergeNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	var d Detail
	if code := f.do(t, "GET", "/v1/pipelines/films", "", false, &d); code != 200 {
		t.Fatalf("status %d", code)
	}
	if d.Name != "films" || d.State != pipeline.StateRunning || len(d.Consumers) != 2 || d.RecordsIn != 1000 || d.RecordsOut != 1000 {
		t.Fatalf("detail %+v", d.Status)
	}
	if len(d.RecentBatches) == 0 || d.RecentBatches[0].Trigger == "" {
		t.Fatalf("recent batches %+v: want batches with their trigger", d.RecentBatches)
	}
	if d.MaxPollRecords != 100 || d.Properties["max.poll.records"] != float64(100) {
		t.Fatalf("max poll %d, properties %v", d.MaxPollRecords, d.Properties)
	}
	if len(d.KnownProperties) == 0 {
		t.Fatal("known_properties is empty; the property editor offers them")
	}
	if d.Merge == nil || len(d.Merge.History) != 1 || d.Merge.History[0].Trigger != connector.TriggerManual || d.Merge.History[0].Records != 1000 {
		t.Fatalf("merge %+v: want the sink's one merge record", d.Merge)
	}
	cfg, _ := json.Marshal(d.Config)
	if bytes.Contains(cfg, []byte("hunter2")) || !bytes.Contains(cfg, []byte(config.Redacted)) {
		t.Fatalf("config %s: the SASL password must be redacted", cfg)
	}
	if !bytes.Contains(cfg, []byte(`"max.poll.records":100`)) || !bytes.Contains(cfg, []byte(`"linger":"50ms"`)) {
		t.Fatalf("config %s: want pipeline-file keys and values", cfg)
	}

	var plain Detail
	f.do(t, "GET", "/v1/pipelines/plain", "", false, &plain)
	if plain.Properties != nil || plain.Merge != nil {
		t.Fatalf("plain: properties %v, merge %v; want neither", plain.Properties, plain.Merge)
	}
}

func TestRatesAndSeries(t *testing.T) {
	f := newFixture(t, "")
	start := time.Now()
	f.srv.Sample(start)
	f.filmsSrc.mu.Lock()
	f.filmsSrc.n = 3000 // 2,000 more records
	f.filmsSrc.mu.Unlock()
	waitFor(t, "2000 more records", func() bool { return f.filmsSink.written.Load() == 3000 })
	waitForRecordsOut(t, f.films, 3000)
	f.srv.Sample(start.Add(2 * time.Second))
	var d Detail
	f.do(t, "GET", "/v1/pipelines/films", "", false, &d)
	if d.RecordsOutPerSec != 1000 || d.RecordsInPerSec != 1000 {
		t.Fatalf("rates in %v out %v, want 1000/s (2,000 records in 2s)", d.RecordsInPerSec, d.RecordsOutPerSec)
	}
	if len(d.Series) != 2 || d.Series[1].RecordsOutPerSec != 1000 || d.Series[1].Time != start.Add(2*time.Second).UnixMilli() {
		t.Fatalf("series %+v", d.Series)
	}
	var noSeries Detail
	f.do(t, "GET", "/v1/pipelines/films?series=0", "", false, &noSeries)
	if noSeries.Series != nil || noSeries.Name != "films" {
		t.Fatal("?series=0 still returned the series")
	}
}

func TestUnknownPipelineIs404(t *testing.T) {
	f := newFixture(t, "")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/pipelines/nope", ""},
		{"POST", "/v1/pipelines/nope/consumers", ""},
		{"DELETE", "/v1/pipelines/nope/consumers/x", ""},
		{"PATCH", "/v1/pipelines/nope/properties", `{"max.poll.records": 5}`},
		{"POST", "/v1/pipelines/nope/pause", ""},
		{"POST", "/v1/pipelines/nope/resume", ""},
		{"POST", "/v1/pipelines/nope/merge", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			f.expectError(t, c.method, c.path, c.body, 404, `no pipeline named "nope"`)
		})
	}
	f.expectError(t, "GET", "/v1/nothing-here", "", 404, "no such endpoint")
}

func TestTokenGuardsMutatingEndpoints(t *testing.T) {
	f := newFixture(t, "s3cret")
	mutating := []struct{ method, path, body string }{
		{"POST", "/v1/pipelines/films/consumers", ""},
		{"DELETE", "/v1/pipelines/films/consumers/films-1", ""},
		{"PATCH", "/v1/pipelines/films/properties", `{"max.poll.records": 5}`},
		{"POST", "/v1/pipelines/films/pause", ""},
		{"POST", "/v1/pipelines/films/resume", ""},
		{"POST", "/v1/pipelines/films/merge", ""},
	}
	for _, c := range mutating {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var e apiError
			if code := f.do(t, c.method, c.path, c.body, false, &e); code != 401 || !strings.Contains(e.Error, "token") {
				t.Fatalf("without a token: %d %q, want 401", code, e.Error)
			}
			req, _ := http.NewRequest(c.method, f.http.URL+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer wrong")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("with a wrong token: %d, want 401 with WWW-Authenticate", resp.StatusCode)
			}
		})
	}
	if st := f.films.Status(); st.State != pipeline.StateRunning || len(st.Consumers) != 2 || f.filmsSrc.MaxPollRecords() != 100 || len(f.filmsSink.Merges()) != 0 {
		t.Fatalf("an unauthorised request changed something: %+v", st)
	}
	// Reads stay open; the right token works.
	for _, path := range []string{"/v1/pipelines", "/v1/pipelines/films", "/healthz", "/readyz", "/metrics", "/"} {
		if code := f.do(t, "GET", path, "", false, nil); code != 200 {
			t.Fatalf("GET %s without a token: %d, want 200", path, code)
		}
	}
	var st map[string]string
	if code := f.do(t, "POST", "/v1/pipelines/films/pause", "", true, &st); code != 200 || st["state"] != "paused" {
		t.Fatalf("pause with the token: %d %v", code, st)
	}
}

func TestAddConsumer(t *testing.T) {
	f := newFixture(t, "")
	var got map[string]string
	if code := f.do(t, "POST", "/v1/pipelines/films/consumers", "", true, &got); code != 201 || got["id"] == "" {
		t.Fatalf("add without a name: %d %v", code, got)
	}
	if code := f.do(t, "POST", "/v1/pipelines/films/consumers", `{"name": "burst-1"}`, true, &got); code != 201 || got["id"] != "burst-1" {
		t.Fatalf("add burst-1: %d %v", code, got)
	}
	ids := map[string]bool{}
	for _, c := range f.films.Status().Consumers {
		ids[c.ID] = true
	}
	if len(ids) != 4 || !ids["burst-1"] {
		t.Fatalf("consumers %v, want 4 with burst-1", ids)
	}
	if f.filmsSrc.readers() != 4 {
		t.Fatalf("%d readers opened, want 4", f.filmsSrc.readers())
	}
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{"name": "burst-1"}`, 409, "already has a consumer")
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{"name": `, 400, "not the JSON object expected")
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{"nmae": "x"}`, 400, `unknown field "nmae"`)
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{"name": "a b"}`, 400, "name: must be")
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{} {}`, 400, "after the JSON object")
	f.expectError(t, "POST", "/v1/pipelines/films/consumers", `{"name": "x"}]`, 400, "after the JSON object")
}

func TestRemoveConsumer(t *testing.T) {
	f := newFixture(t, "")
	id := f.films.Status().Consumers[0].ID
	var got map[string]string
	if code := f.do(t, "DELETE", "/v1/pipelines/films/consumers/"+id, "", true, &got); code != 200 || got["removed"] != id {
		t.Fatalf("remove %s: %d %v", id, code, got)
	}
	if cs := f.films.Status().Consumers; len(cs) != 1 || cs[0].ID == id {
		t.Fatalf("consumers after removing %s: %+v", id, cs)
	}
	f.expectError(t, "DELETE", "/v1/pipelines/films/consumers/"+id, "", 404, "has no consumer")
	last := f.films.Status().Consumers[0].ID
	f.expectError(t, "DELETE", "/v1/pipelines/films/consumers/"+last, "", 409, "last consumer")
}

func TestSetProperties(t *testing.T) {
	f := newFixture(t, "")
	var got struct {
		Properties     map[string]any `json:"properties"`
		MaxPollRecords int            `json:"max_poll_records"`
	}
	code := f.do(t, "PATCH", "/v1/pipelines/films/properties", `{"max.poll.records": 2000, "fetch.min.bytes": "1024", "fetch.max.wait.ms": null}`, true, &got)
	if code != 200 || got.MaxPollRecords != 2000 {
		t.Fatalf("patch: %d %+v", code, got)
	}
	want := map[string]any{"max.poll.records": float64(2000), "fetch.min.bytes": "1024"}
	if len(got.Properties) != 2 || got.Properties["max.poll.records"] != want["max.poll.records"] || got.Properties["fetch.min.bytes"] != want["fetch.min.bytes"] {
		t.Fatalf("properties %v, want %v (fetch.max.wait.ms removed)", got.Properties, want)
	}
	// Applied live: both consumers were re-opened, and status shows it.
	if f.filmsSrc.readers() != 4 {
		t.Fatalf("%d readers opened, want 2 + 2 restarted", f.filmsSrc.readers())
	}
	var d Detail
	f.do(t, "GET", "/v1/pipelines/films", "", false, &d)
	if d.MaxPollRecords != 2000 || d.Properties["max.poll.records"] != float64(2000) || len(d.Consumers) != 2 {
		t.Fatalf("status after the change: max poll %d, properties %v, %d consumers", d.MaxPollRecords, d.Properties, len(d.Consumers))
	}

	for _, c := range []struct{ name, body, want string }{
		{"bad JSON", `{"max.poll.records": `, "not the JSON object expected"},
		{"not an object", `[1, 2]`, "not the JSON object expected"},
		{"empty body", ``, "body is empty"},
		{"empty object", `{}`, "no properties given"},
		{"unknown property", `{"max.poll.recordz": 10}`, "max.poll.recordz: unknown consumer property"},
		{"bad value", `{"fetch.min.bytes": "lots"}`, `fetch.min.bytes: "lots" is not a whole number`},
		{"fraction", `{"max.poll.records": 1.5}`, `"1.5" is not a whole number`},
		{"negative", `{"max.poll.records": -1}`, "out of range"},
		{"nested value", `{"max.poll.records": {"v": 1}}`, "must be a number or a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.expectError(t, "PATCH", "/v1/pipelines/films/properties", c.body, 400, c.want)
		})
	}
	if f.filmsSrc.MaxPollRecords() != 2000 || f.filmsSrc.readers() != 4 {
		t.Fatal("a refused change restarted consumers or changed properties")
	}
	f.expectError(t, "PATCH", "/v1/pipelines/plain/properties", `{"max.poll.records": 5}`, 409, "cannot be changed at run time")
}

func TestPauseAndResume(t *testing.T) {
	f := newFixture(t, "")
	var st map[string]string
	for range 2 { // idempotent
		if code := f.do(t, "POST", "/v1/pipelines/films/pause", "", true, &st); code != 200 || st["state"] != "paused" {
			t.Fatalf("pause: %d %v", code, st)
		}
	}
	if f.films.Status().State != pipeline.StatePaused || !f.films.Paused() {
		t.Fatal("the pipeline is not paused")
	}
	var ready map[string]any
	if code := f.do(t, "GET", "/readyz", "", false, &ready); code != 200 {
		t.Fatalf("readyz while paused: %d %v; paused is ready", code, ready)
	}
	for range 2 {
		if code := f.do(t, "POST", "/v1/pipelines/films/resume", "", true, &st); code != 200 || st["state"] != "running" {
			t.Fatalf("resume: %d %v", code, st)
		}
	}
	if f.films.Paused() {
		t.Fatal("the pipeline is still paused")
	}
}

func TestMerge(t *testing.T) {
	f := newFixture(t, "")
	var got map[string]any
	if code := f.do(t, "POST", "/v1/pipelines/films/merge", "", true, &got); code != 200 || got["merged"] != true {
		t.Fatalf("merge: %d %v", code, got)
	}
	if m := f.filmsSink.Merges(); len(m) != 1 || m[0].Records != 1000 {
		t.Fatalf("merges %+v, want one over 1000 rows", m)
	}
	f.expectError(t, "POST", "/v1/pipelines/plain/merge", "", 409, "has no merge")
	f.filmsSink.mu.Lock()
	f.filmsSink.fail = true
	f.filmsSink.mu.Unlock()
	f.expectError(t, "POST", "/v1/pipelines/films/merge", "", 500, "relation films does not exist")
}

func TestHealthReadyAndMetrics(t *testing.T) {
	f := newFixture(t, "")
	var h map[string]any
	if code := f.do(t, "GET", "/healthz", "", false, &h); code != 200 || h["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, h)
	}
	if code := f.do(t, "GET", "/readyz", "", false, &h); code != 200 || h["ready"] != true {
		t.Fatalf("readyz: %d %v", code, h)
	}

	// A pipeline that has not started is not ready.
	idle, _ := pipeline.New(pipeline.Options{Name: "idle", Source: newPropSource(0, nil), Sink: &countSink{}, Logger: quiet})
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: f.films}, {Pipeline: idle}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"idle":"starting"`) {
		t.Fatalf("readyz with a pipeline not started: %d %s", rec.Code, rec.Body)
	}

	resp, err := http.Get(f.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sluice_records_out_total{pipeline="films"} `,
		`sluice_pipeline_state{pipeline="films",state="running"} 1`,
		`sluice_admin_requests_total{code="200",route="GET /healthz"}`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestDashboardIsServed(t *testing.T) {
	f := newFixture(t, "")
	for path, want := range map[string]string{"/": "<title>Sluice</title>", "/app.js": "drawChart", "/style.css": "--accent"} {
		resp, err := http.Get(f.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: no Content-Security-Policy", path)
		}
	}
}

func TestCrossOriginMutationsAreRefused(t *testing.T) {
	f := newFixture(t, "")
	req, _ := http.NewRequest("POST", f.http.URL+"/v1/pipelines/films/pause", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the refusal is %q, want JSON", resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode != 403 || f.films.Paused() {
		t.Fatalf("cross-site pause: %d, paused %v; want 403 and still running", resp.StatusCode, f.films.Paused())
	}
}

func TestServeStopsOnContextAndSamples(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: f.films, Sink: f.filmsSink}}, Logger: quiet, SampleEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	waitFor(t, "samples", func() bool { return len(srv.byName["films"].history.series()) >= 3 })
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "0.0.0.0:8080": false, "10.1.2.3:80": false} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(a); got != want {
			t.Errorf("isLoopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestListSaysWhetherATokenIsRequired: the dashboard offered "Admin
// token" on a server without one; it now asks the list.
func TestListSaysWhetherATokenIsRequired(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  bool
	}{{"", false}, {"s3cret", true}} {
		f := newFixture(t, tc.token)
		var list struct {
			TokenRequired *bool `json:"token_required"`
		}
		if code := f.do(t, "GET", "/v1/pipelines", "", false, &list); code != 200 || list.TokenRequired == nil || *list.TokenRequired != tc.want {
			t.Fatalf("token %q: status %d, token_required %v, want %v", tc.token, code, list.TokenRequired, tc.want)
		}
	}
}

func TestVersionEndpoint(t *testing.T) {
	f := newFixture(t, "s3cret")
	var v map[string]any
	if code := f.do(t, "GET", "/v1/version", "", false, &v); code != 200 {
		t.Fatalf("GET /v1/version without a token: %d", code)
	}
	if s, _ := v["version"].(string); s == "" || s == "dev" {
		t.Fatalf("version %v", v)
	}
	if s, _ := v["go_version"].(string); !strings.HasPrefix(s, "go1.") {
		t.Fatalf("go_version in %v", v)
	}
}

// healthSource is a propSource that tells a health set by the test.
type healthSource struct {
	*propSource
	mu    sync.Mutex
	state string
}

func (s *healthSource) SourceHealth() connector.SourceHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return connector.SourceHealth{State: s.state}
}

func (s *healthSource) set(state string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
}

// Regression: one broker of three down made the source degraded, and
// /readyz answered 503 though the client read on from the other two.
// Ready means the pipeline moves records: a source that is unreachable
// makes it not ready, a partial outage does not (shown degraded).
func TestReadyzFollowsWhetherRecordsMove(t *testing.T) {
	src := &healthSource{propSource: newPropSource(0, nil), state: connector.SourceHealthy}
	p := startPipeline(t, "brokers", src, &countSink{}, 1)
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: p}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		source string
		code   int
		shown  string
	}{
		{connector.SourceHealthy, 200, "running"},
		{connector.SourceDegraded, 200, "degraded"},
		{connector.SourceUnreachable, 503, "degraded"},
		{connector.SourceHealthy, 200, "running"},
	} {
		src.set(tc.source)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/readyz", nil))
		var body struct {
			Ready     bool              `json:"ready"`
			Pipelines map[string]string `json:"pipelines"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.code || body.Ready != (tc.code == 200) || body.Pipelines["brokers"] != tc.shown {
			t.Fatalf("source %s: readyz %d %s; want %d with the pipeline %s", tc.source, rec.Code, rec.Body, tc.code, tc.shown)
		}
	}
}
