package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/twmb/franz-go/pkg/kfake"
)

// runCLI runs the root command with args and returns stdout, stderr and
// the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	root := newRootCommand()
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("sluice %s has no example in --help", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				t.Errorf("sluice %s %s has no example in --help", c.Name(), sub.Name())
			}
		}
	}
	out, _, err := runCLI(t, "run", "--help")
	if err != nil || !strings.Contains(out, "sluice run films.yaml") {
		t.Fatalf("run --help: %v\n%s", err, out)
	}
}

func TestValidateReportsProblemsAndRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(`
name: ok
source: {kafka: {brokers: [b:9092], topics: [t], group: g, sasl: {mechanism: PLAIN, username: u, password: "${SLUICE_TEST_PW}"}}}
sink: {file: {path: out.jsonl}}
`), 0o644)
	os.WriteFile(bad, []byte(`
name: bad
source: {kafka: {brokers: [b:9092], topics: [t], grop: g}}
sink: {file: {}}
`), 0o644)
	t.Setenv("SLUICE_TEST_PW", "hunter2")
	out, _, err := runCLI(t, "validate", "--print", good)
	if err != nil || !strings.Contains(out, "good.yaml: OK") {
		t.Fatalf("validate good: %v\n%s", err, out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("validate --print showed the password:\n%s", out)
	}
	_, errOut, err := runCLI(t, "validate", good, bad)
	if err == nil {
		t.Fatal("validate accepted a bad file")
	}
	for _, want := range []string{"source.kafka.grop: unknown key", "source.kafka.group: is required", "sink.file.path: is required"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestTopicsCommands(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := "--brokers=" + c.ListenAddrs()[0]
	if out, _, err := runCLI(t, "topics", "create", "films", "--partitions", "3", "--config", "retention.ms=1000", b); err != nil || !strings.Contains(out, "created topic films with 3 partitions") {
		t.Fatalf("create: %v %s", err, out)
	}
	if _, _, err := runCLI(t, "topics", "create", "films", b); err == nil {
		t.Fatal("creating an existing topic succeeded")
	}
	if out, _, err := runCLI(t, "topics", "list", b); err != nil || !strings.Contains(out, "films") || !strings.Contains(out, "3") {
		t.Fatalf("list: %v %s", err, out)
	}
	if out, _, err := runCLI(t, "topics", "describe", "films", b); err != nil || !strings.Contains(out, "topic films: 3 partitions") || !strings.Contains(out, "retention.ms=1000") {
		t.Fatalf("describe: %v %s", err, out)
	}
	if _, _, err := runCLI(t, "topics", "describe", "nope", b); err == nil {
		t.Fatal("describing a missing topic succeeded")
	}
	if out, _, err := runCLI(t, "topics", "delete", "films", b); err != nil || !strings.Contains(out, "deleted topic films") {
		t.Fatalf("delete: %v %s", err, out)
	}
}

func TestDevNamesABusyPortAndTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, _, err = runCLI(t, "dev", "--in-memory", "--kafka-port", itoa(port))
	if err == nil || !strings.Contains(err.Error(), itoa(port)) || !strings.Contains(err.Error(), "--kafka-port") {
		t.Fatalf("err = %v; want the busy port and the flag to change it named", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDemoHelpNamesAllFivePipelines: demo --help described two of its five
// pipelines and showed a --data-dir default although --in-memory is on.
func TestDemoHelpNamesAllFivePipelines(t *testing.T) {
	out, _, err := runCLI(t, "demo", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"events-to-kafka", "events-to-file", "orders-to-sqlite", "purchases-to-bigquery", "alerts-from-pubsub"} {
		if !strings.Contains(out, name) {
			t.Errorf("demo --help does not mention %s", name)
		}
	}
	if strings.Contains(out, devstack.DefaultDataDir()) {
		t.Errorf("demo --help shows %s as the data directory, but the demo keeps everything in memory:\n%s", devstack.DefaultDataDir(), out)
	}
	devOut, _, err := runCLI(t, "dev", "--help")
	if err != nil || !strings.Contains(devOut, devstack.DefaultDataDir()) {
		t.Errorf("dev --help should still name its default data directory: %v", err)
	}
}

func TestDevRejectsAMalformedPubSubSubscription(t *testing.T) {
	_, _, err := runCLI(t, "dev", "--in-memory", "--pubsub-subscription", "alerts-sluice")
	if err == nil || !strings.Contains(err.Error(), "SUBSCRIPTION:TOPIC") {
		t.Fatalf("err = %v; want the expected form named", err)
	}
}

// TestValidateCatchesWhatRunRefuses: validate passed files that run then
// refused or that failed on every record (a registry with basic auth and a
// bearer token, a template naming a field records do not have, an admin
// address that is none, a heartbeat longer than the session timeout, Kafka
// properties out of range). Every one is now reported, with its field path,
// together, without connecting to anything.
func TestValidateCatchesWhatRunRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "hostile.yaml")
	os.WriteFile(bad, []byte(`
name: hostile
source:
  kafka:
    brokers: [127.0.0.1:1]
    topics: [t]
    group: g
    properties: {session.timeout.ms: 10000, heartbeat.interval.ms: 20000, max.poll.records: 0, fetch.max.bytes: 0, client.id: "a\nb"}
format:
  value: avro-confluent
  schema_registry: {url: "http://127.0.0.1:1", username: u, password: p, bearer_token: tok}
dlq: {topic: "{{.Topic}}.{{.Nope}}"}
on_error: dlq
sink:
  kafka: {brokers: [127.0.0.1:1], topic: '{{.Nope}}'}
admin: {listen: "not an address"}
`), 0o644)
	_, errOut, err := runCLI(t, "validate", bad)
	if err == nil {
		t.Fatal("validate accepted the file")
	}
	for _, want := range []string{
		"format.schema_registry.bearer_token: set either username/password or bearer_token, not both",
		"sink.kafka.topic: template uses .Nope, which a record does not have",
		"dlq.topic: template uses .Nope",
		`admin.listen: "not an address" is not an address`,
		"source.kafka.properties.heartbeat.interval.ms: 20000 must be less than session.timeout.ms (10000)",
		"source.kafka.properties.max.poll.records: must be at least 1",
		"source.kafka.properties.fetch.max.bytes:",
		"source.kafka.properties.client.id: must not contain control characters",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestValidateReportsTransformExpressionsWithTheirPosition(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`
name: tf
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
format: {value: json}
transforms:
  - filter: 'value.kind != "test"'
  - set: {total_cents: 'value.amount * 100 + "x"'}
  - filter: 'value.amount'
  - filter: 'value.kind = "a"'
sink: {file: {path: out.jsonl}}
`), 0o644)
	_, errOut, err := runCLI(t, "validate", bad)
	if err == nil {
		t.Fatal("validate accepted a bad expression")
	}
	for _, want := range []string{
		`transforms[1].set.total_cents: found no matching overload for '_+_'`,
		`transforms[3].filter: Syntax error`,
		`(at 1:12 in "value.kind = \"a\"")`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "transforms[0]") || strings.Contains(errOut, "transforms[2]") {
		t.Errorf("a good expression was reported (a dynamic value may be a bool):\n%s", errOut)
	}
}
