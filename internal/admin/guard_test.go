package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// serve runs srv.Serve on ln until the test ends.
func serve(t *testing.T, srv *Server, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// request sends method path to addr with the Host header host and returns
// the status and the body.
func request(t *testing.T, addr, host, method, path, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDNSRebindingHostIsRefused(t *testing.T) {
	f := newFixture(t, "")
	srv, err := New(Options{
		Pipelines:    []Pipeline{{Pipeline: f.films, Source: f.filmsSrc, Sink: f.filmsSink}},
		AllowedHosts: []string{"sluice.internal"},
		Logger:       quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv, ln)
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	// What a page on evil.example gets after pointing its name at
	// 127.0.0.1: nothing, and nothing changes.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/pipelines/films", ""},
		{"GET", "/v1/pipelines", ""},
		{"POST", "/v1/pipelines/films/pause", ""},
		{"POST", "/v1/pipelines/films/consumers", ""},
		{"GET", "/", ""},
	} {
		code, body := request(t, addr, "evil.example:"+port, c.method, c.path, c.body, "")
		if code != http.StatusForbidden || !strings.Contains(body, `host \"evil.example:`+port+`\" is not this admin API's`) || !strings.Contains(body, "admin.allowed_hosts") {
			t.Fatalf("%s %s with Host evil.example: %d %s, want 403 naming the host", c.method, c.path, code, body)
		}
	}
	if st := f.films.Status(); f.films.Paused() || len(st.Consumers) != 2 {
		t.Fatalf("a request for another host changed the pipeline: paused %v, %d consumers", f.films.Paused(), len(st.Consumers))
	}
	for _, host := range []string{"localhost:1", "127.0.0.1:1"} {
		if code, body := request(t, addr, host, "GET", "/healthz", "", ""); code != http.StatusForbidden {
			t.Errorf("Host %q: %d %s, want 403", host, code, body)
		}
	}
	for _, host := range []string{addr, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "sluice.internal", "sluice.internal:8443"} {
		if code, body := request(t, addr, host, "GET", "/v1/pipelines/films", "", ""); code != http.StatusOK {
			t.Errorf("Host %q: %d %s, want 200", host, code, body)
		}
	}
	if code, body := request(t, addr, addr, "POST", "/v1/pipelines/films/pause", "", ""); code != http.StatusOK || !f.films.Paused() {
		t.Fatalf("pause through the listen address: %d %s", code, body)
	}
}

// On all interfaces, the machine's addresses are its names; an IP address
// cannot be rebound, a DNS name can.
func TestHostCheckWhenListeningOnAllInterfaces(t *testing.T) {
	srv, err := New(Options{Logger: quiet, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	listen := "[::]:8080"
	srv.listenAddr.Store(&listen)
	for host, want := range map[string]bool{
		"10.1.2.3:8080": true, "[fe80::1]:8080": true, "localhost:8080": true,
		"10.1.2.3:9090": false, "evil.example:8080": false, "sluice.example.com:8080": false, "": false,
	} {
		if got := srv.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// addrListener reports another address than the one it listens on, to
// test what Serve does beyond loopback without opening a port there.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

func TestServeBeyondLoopbackRequiresAToken(t *testing.T) {
	f := newFixture(t, "")
	outside := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: f.films}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// Were it to serve, the deadline ends it (with nil, which fails below).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Serve(ctx, addrListener{ln, outside})
	if !errors.Is(err, ErrTokenRequired) || !strings.Contains(err.Error(), "0.0.0.0:8080") || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("Serve on 0.0.0.0 without a token: %v, want a refusal naming the address and admin.token", err)
	}
	if err := CheckExposure(outside, "s3cret"); err != nil {
		t.Fatalf("with a token: %v", err)
	}
	if err := CheckExposure(&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, ""); err != nil {
		t.Fatalf("loopback without a token: %v", err)
	}

	withToken, err := New(Options{Pipelines: []Pipeline{{Pipeline: f.films}}, Logger: quiet, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, withToken, addrListener{ln2, outside})
	if code, body := request(t, ln2.Addr().String(), "10.1.2.3:8080", "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("healthz through an address of the machine: %d %s", code, body)
	}
}

func TestConfigIsShownOnlyWithTheToken(t *testing.T) {
	f := newFixture(t, "s3cret")
	var d Detail
	if code := f.do(t, "GET", "/v1/pipelines/films", "", false, &d); code != 200 {
		t.Fatalf("status without the token: %d", code)
	}
	if d.Config != nil || !strings.Contains(d.ConfigHidden, "admin token") || d.Name != "films" {
		t.Fatalf("without the token: config %v, config_hidden %q", d.Config, d.ConfigHidden)
	}
	d = Detail{}
	if code := f.do(t, "GET", "/v1/pipelines/films", "", true, &d); code != 200 {
		t.Fatalf("status with the token: %d", code)
	}
	b, _ := json.Marshal(d.Config)
	if d.Config == nil || d.ConfigHidden != "" || strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), config.Redacted) {
		t.Fatalf("with the token: config %s, config_hidden %q", b, d.ConfigHidden)
	}
}

func TestConsumersAreCappedPerPipeline(t *testing.T) {
	f := newFixture(t, "")
	cfg := config.Pipeline{Name: "films", Source: config.Source{Kafka: &config.KafkaSource{Consumers: 2}}}
	srv, err := New(Options{Pipelines: []Pipeline{{Pipeline: f.films, Config: cfg, Source: f.filmsSrc, Sink: f.filmsSink}}, MaxConsumers: 3, Logger: quiet, ControlTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv, ln)
	addr := ln.Addr().String()
	if code, body := request(t, addr, addr, "POST", "/v1/pipelines/films/consumers", "", ""); code != http.StatusCreated {
		t.Fatalf("third consumer: %d %s", code, body)
	}
	code, body := request(t, addr, addr, "POST", "/v1/pipelines/films/consumers", "", "")
	if code != http.StatusConflict || !strings.Contains(body, "already has 3 consumers") || !strings.Contains(body, "admin.max_consumers: 3") {
		t.Fatalf("fourth consumer: %d %s, want 409 naming the limit", code, body)
	}
	if n := len(f.films.Status().Consumers); n != 3 {
		t.Fatalf("%d consumers, want 3", n)
	}
	// The default cap is 64.
	if def, _ := New(Options{Logger: quiet}); def.opts.MaxConsumers != DefaultMaxConsumers || DefaultMaxConsumers != 64 {
		t.Fatalf("default cap %d", def.opts.MaxConsumers)
	}
}
