package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
)

const tlsFilmSchema = `{"type":"record","name":"Film","namespace":"demo","fields":[{"name":"id","type":"long"},{"name":"title","type":"string"}]}`

// TestDevTLSEndToEnd: TLS was configurable but never exercised. `sluice dev
// --tls` now serves Kafka and the schema registry with a generated CA; a
// pipeline trusting only that CA file reads Avro records through both, and
// its admin API serves HTTPS with the dev certificate. Plaintext is
// refused by each.
func TestDevTLSEndToEnd(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := devstack.Start(ctx, devstack.Options{TLS: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	files := stack.TLSFiles
	if !strings.HasPrefix(stack.RegistryURL, "https://") {
		t.Fatalf("registry URL %s, want https", stack.RegistryURL)
	}
	var out bytes.Buffer
	printStack(&out, stack, devstack.Options{})
	if !strings.Contains(out.String(), "TLS CA file       "+files.CAFile) {
		t.Fatalf("dev output does not say where the CA file is:\n%s", out.String())
	}

	pem, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	clientTLS := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	// Plaintext gets nowhere.
	plain, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := plain.Ping(pctx); err == nil {
		t.Fatal("a plaintext client reached the TLS broker")
	}
	pcancel()
	plain.Close()

	reg, err := codec.NewRegistry(codec.RegistryOptions{URL: stack.RegistryURL, TLS: codec.TLSOptions{CAFile: files.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewAvroConfluentEncoder(reg, tlsFilmSchema, codec.SubjectTopic, true)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...), kgo.DialTLSConfig(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "films"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		v, err := enc.Encode(ctx, "films", &connector.Record{Fields: map[string]any{"id": int64(i), "title": fmt.Sprintf("film %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "films", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	outPath := filepath.Join(t.TempDir(), "films.jsonl")
	f, err := config.Parse([]byte(fmt.Sprintf(`
name: films
source:
  kafka: {brokers: [%s], topics: [films], group: films, tls: {enabled: true, ca_file: %q}}
format: {value: avro-confluent, schema_registry: {url: %q, tls: {ca_file: %q}}}
sink:
  file: {path: %q}
admin: {listen: "127.0.0.1:0", cert_file: %q, key_file: %q}
`, stack.Brokers[0], files.CAFile, stack.RegistryURL, files.CAFile, outPath, files.CertFile, files.KeyFile)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	b, err := assembly.Build(ctx, f.Pipelines[0], log)
	if err != nil {
		t.Fatal(err)
	}
	grp, gctx := errgroup.WithContext(ctx)
	t.Cleanup(func() {
		cancel()
		if err := grp.Wait(); err != nil {
			t.Errorf("pipeline or admin API: %v", err)
		}
		_ = b.Close(context.Background())
	})
	grp.Go(func() error { return b.Pipeline.Run(gctx) })
	var logs syncBuffer
	if err := startAdmin(gctx, grp, f.Admin, []*assembly.Built{b}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`url=(https://\S+)/`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("the admin API did not log an https URL: %s", logs.String())
	}
	adminURL := m[1]

	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	var got struct {
		State      string `json:"state"`
		RecordsOut int64  `json:"records_out"`
	}
	for got.RecordsOut < n {
		if time.Now().After(deadline) {
			t.Fatalf("status over HTTPS never showed %d records out: %+v", n, got)
		}
		time.Sleep(100 * time.Millisecond)
		resp, err := httpsClient.Get(adminURL + "/v1/pipelines/films?series=0")
		if err != nil {
			t.Fatalf("admin API over HTTPS: %v", err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
	}
	if resp, err := http.Get(strings.Replace(adminURL, "https://", "http://", 1) + "/healthz"); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("the admin API answered plaintext HTTP")
	}

	lines := 0
	titles := map[string]bool{}
	fh, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var rec struct {
			Value map[string]any `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
		titles[fmt.Sprint(rec.Value["title"])] = true
	}
	if lines < n || len(titles) != n || !titles["film 7"] {
		t.Fatalf("the file holds %d lines, %d distinct titles; want %d decoded films", lines, len(titles), n)
	}
}

// TestDevSASLFlags: `sluice dev --sasl MECH` requires SASL with the user
// given and the password from the environment, says so, and never prints
// a password that is not the documented default.
func TestDevSASLFlags(t *testing.T) {
	t.Setenv("SLUICE_DEV_SASL_PASSWORD", "pw-from-env")
	f := &devFlags{sasl: "scram-sha-256", saslUser: "films"}
	o := f.options()
	if o.SASL == nil || o.SASL.Mechanism != "SCRAM-SHA-256" || o.SASL.User != "films" || o.SASL.Password != "pw-from-env" {
		t.Fatalf("dev --sasl scram-sha-256 --sasl-user films gave %+v", o.SASL)
	}
	o.Host, o.RegistryPort, o.KafkaPort = "127.0.0.1", 0, 0
	o.BigQueryGRPCPort, o.BigQueryRESTPort, o.PubSubPort = 0, 0, 0
	o.DataDir = ""
	stack, err := devstack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	var out bytes.Buffer
	printStack(&out, stack, o)
	if !strings.Contains(out.String(), "SASL              SCRAM-SHA-256, user films") || strings.Contains(out.String(), "pw-from-env") {
		t.Fatalf("dev output:\n%s", out.String())
	}
	if _, err := devstack.Start(context.Background(), devstack.Options{SASL: &devstack.SASL{Mechanism: "GSSAPI"}}); err == nil || !strings.Contains(err.Error(), "is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER") {
		t.Fatalf("dev --sasl GSSAPI: %v", err)
	}
}
