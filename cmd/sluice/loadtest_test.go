package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/devstack"
	"github.com/sluice-dev/sluice/internal/loadgen"
)

func TestLoadtestThenMonitorWriteSummariesAndReports(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	dir := t.TempDir()

	_, _, err = runCLI(t, "loadtest", "--brokers", brokers, "--topic", "missing", "--records", "10")
	if err == nil || !strings.Contains(err.Error(), "--create-topic") {
		t.Fatalf("loadtest to a missing topic: %v", err)
	}

	loadReport := filepath.Join(dir, "load.html")
	out, _, err := runCLI(t, "loadtest", "--brokers", brokers, "--topic", "orders", "--create-topic", "--partitions", "2",
		"--records", "3000", "--keys", "5", "--format", "json", "--connections", "2", "--report", loadReport)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"records acked 3,000 ", "p99 ", "errors 0", "report written to " + loadReport} {
		if !strings.Contains(words, want) {
			t.Errorf("loadtest output lacks %q:\n%s", want, out)
		}
	}

	monitorReport := filepath.Join(dir, "monitor.html")
	out, _, err = runCLI(t, "monitor", "--brokers", brokers, "--interval", "200ms", "--duration", "700ms", "--report", monitorReport)
	if err != nil {
		t.Fatalf("monitor: %v\n%s", err, out)
	}
	if !strings.Contains(out, "orders rec/s") || !strings.Contains(out, "report written to "+monitorReport) {
		t.Errorf("monitor output lacks the orders column or the report:\n%s", out)
	}
	for _, path := range []string{loadReport, monitorReport} {
		page, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), `id="sluice-report-data"`) || !strings.Contains(string(page), "<svg ") ||
			strings.Contains(string(page), "<script src") {
			t.Errorf("%s is not a self-contained report with charts", path)
		}
	}
}

// topics, loadtest and monitor authenticate like a pipeline does: SASL
// SCRAM with the password from the environment, never from a flag.
func TestKafkaCommandsAuthenticateWithSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "ops", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	auth := []string{"--brokers", brokers, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username", "ops"}

	t.Setenv("SLUICE_SASL_PASSWORD", "wrong")
	if _, _, err := runCLI(t, append([]string{"topics", "list"}, auth...)...); err == nil {
		t.Fatal("topics list with a wrong password succeeded")
	}
	t.Setenv("SLUICE_SASL_PASSWORD", "s3cret")
	if out, _, err := runCLI(t, append([]string{"topics", "create", "secure", "--partitions", "2"}, auth...)...); err != nil {
		t.Fatalf("topics create: %v\n%s", err, out)
	}
	out, _, err := runCLI(t, append([]string{"loadtest", "--topic", "secure", "--records", "500", "--progress=false"}, auth...)...)
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "records acked 500 ") {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, append([]string{"monitor", "--interval", "200ms", "--duration", "500ms"}, auth...)...)
	if err != nil || !strings.Contains(out, "secure rec/s") {
		t.Fatalf("monitor: %v\n%s", err, out)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatal("the password was printed")
	}
}

// sluice monitor --metrics-url against the dev stack's broker metrics
// prints the broker columns live; a Confluent Cloud URL without the API
// key in the environment is refused before anything is sent.
func TestMonitorPrintsBrokerFiguresOfTheDevBroker(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	out, _, err := runCLI(t, "monitor", "--brokers", strings.Join(stack.Brokers, ","), "--metrics-url", stack.MetricsURL,
		"--interval", "200ms", "--duration", "700ms")
	if err != nil {
		t.Fatalf("monitor: %v\n%s", err, out)
	}
	for _, col := range []string{"in MB/s", "out MB/s", "conns", "req/s", "load"} {
		if !strings.Contains(out, col) {
			t.Errorf("monitor output lacks the %q column:\n%s", col, out)
		}
	}
	if strings.Contains(out, "error") {
		t.Errorf("monitor reported an error:\n%s", out)
	}
	t.Setenv("CONFLUENT_CLOUD_API_KEY", "")
	_, _, err = runCLI(t, "monitor", "--metrics-url", "https://api.telemetry.confluent.cloud/v2/metrics/cloud/export?resource.kafka.id=lkc-1", "--duration", "1s")
	if err == nil || !strings.Contains(err.Error(), "CONFLUENT_CLOUD_API_KEY") {
		t.Errorf("monitor of Confluent Cloud without a key: %v", err)
	}
}

// --control serves the rate control on loopback only, and answers only
// to loopback names.
func TestRateControlIsLoopbackOnly(t *testing.T) {
	if _, _, err := serveRateControl("0.0.0.0:0", loadgen.NewRateControl()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("--control 0.0.0.0:0: %v", err)
	}
	url, stop, err := serveRateControl("127.0.0.1:0", loadgen.NewRateControl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /rate with Host attacker.example: HTTP %d, want 403", resp.StatusCode)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /rate: HTTP %d", resp.StatusCode)
	}
}

// sluice tail reads back, decoded, what sluice loadtest --format avro
// wrote, and exits by itself with --until-end.
func TestTailPrintsWhatLoadtestWrote(t *testing.T) {
	stack, err := devstack.Start(context.Background(), devstack.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	brokers := strings.Join(stack.Brokers, ",")
	if out, _, err := runCLI(t, "loadtest", "--brokers", brokers, "--topic", "shop", "--create-topic", "--format", "avro",
		"--registry-url", stack.RegistryURL, "--records", "20", "--keys", "3", "--progress=false"); err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	out, _, err := runCLI(t, "tail", "shop", "--brokers", brokers, "--registry-url", stack.RegistryURL, "--from", "earliest", "--until-end")
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 20 || !strings.Contains(lines[0], ` key="key-`) || !strings.Contains(lines[0], `"user":{"id":`) {
		t.Errorf("tail printed %d lines, want 20 decoded ones:\n%s", len(lines), out)
	}
	out, _, err = runCLI(t, "tail", "shop", "--brokers", brokers, "--registry-url", stack.RegistryURL, "--from", "earliest", "--max", "2", "--format", "json")
	if err != nil || strings.Count(out, `"value":{"id":`) != 2 {
		t.Errorf("tail --max 2 --format json: %v\n%s", err, out)
	}
}

// cluster describe lists every broker with the controller marked and the
// partitions each leads; topics describe shows the in-sync replicas.
func TestClusterAndTopicDescribeShowBrokersAndISR(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "films"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := "--brokers=" + strings.Join(c.ListenAddrs(), ",")
	out, _, err := runCLI(t, "cluster", "describe", b)
	if err != nil {
		t.Fatalf("cluster describe: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "3 brokers") || strings.Count(out, " yes ") != 1 {
		t.Fatalf("cluster describe printed:\n%s", out)
	}
	leaders := 0
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f[len(f)-2])
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		leaders += n
	}
	if leaders < 6 {
		t.Errorf("brokers lead %d partitions, want at least films' 6:\n%s", leaders, out)
	}
	out, _, err = runCLI(t, "topics", "describe", "films", b)
	if err != nil || !strings.Contains(out, "ISR") || !regexp.MustCompile(`(?m)^0\s+\d\s+\[\d[^\]]*\]\s+\[\d`).MatchString(out) {
		t.Errorf("topics describe: %v\n%s", err, out)
	}
}

// --command-config reads a Kafka client.properties file: brokers, SASL from
// sasl.jaas.config, and the producer settings loadtest takes (flags win),
// in topics, loadtest, tail, monitor and cluster.
func TestKafkaCommandsReadClientProperties(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "ops", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dir := t.TempDir()
	props := filepath.Join(dir, "client.properties")
	if err := os.WriteFile(props, []byte("bootstrap.servers="+strings.Join(c.ListenAddrs(), ",")+`
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-256
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="ops" password="s3cret";
acks=1
compression.type=lz4
linger.ms=10
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_SASL_PASSWORD", "")
	t.Setenv("SLUICE_BROKERS", "127.0.0.1:1") // the file's bootstrap.servers wins over the default
	if out, _, err := runCLI(t, "topics", "create", "props", "--command-config", props); err != nil {
		t.Fatalf("topics create: %v\n%s", err, out)
	}
	report := filepath.Join(dir, "load.html")
	out, _, err := runCLI(t, "loadtest", "--command-config", props, "--topic", "props", "--records", "100", "--compression", "gzip", "--progress=false", "--report", report)
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "records acked 100 ") {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	page, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(page), "acks=1, compression=gzip") {
		t.Errorf("the report does not show acks=1 from the file and gzip from the flag: %v", err)
	}
	out, _, err = runCLI(t, "tail", "props", "--command-config", props, "--from", "earliest", "--until-end", "--registry-url", "")
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 100 {
		t.Errorf("tail: %v, %d lines", err, len(strings.Split(strings.TrimSpace(out), "\n")))
	}
	// monitor authenticates with the file's SASL settings too: it sees
	// the topic's 100 records and no error.
	out, _, err = runCLI(t, "monitor", "--command-config", props, "--topics", "props", "--interval", "200ms", "--duration", "700ms")
	if err != nil || !strings.Contains(out, "props rec/s") || strings.Contains(out, "error") {
		t.Errorf("monitor: %v\n%s", err, out)
	}
	if out, _, err := runCLI(t, "cluster", "describe", "--command-config", props); err != nil || !strings.Contains(out, "1 brokers") || strings.Contains(out, "s3cret") {
		t.Errorf("cluster describe: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.properties")
	if err := os.WriteFile(bad, []byte("security.protocol=SSL\nssl.truststore.location=/x.jks\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "topics", "list", "--command-config", bad); err == nil || !strings.Contains(err.Error(), "line 2: ssl.truststore.location") {
		t.Errorf("a JKS truststore: %v", err)
	}
}

// The + and - keys change a running load's rate by a quarter up and a
// fifth down, and say so; an unlimited rate is left alone. (The keys
// themselves were checked in a real terminal under tmux.)
func TestRateKeysStepTheRate(t *testing.T) {
	c := loadgen.NewRateControl()
	if msg, ok := rateKey('+', c); !ok || !strings.Contains(msg, "unlimited") {
		t.Errorf("+ before a rate: %q %v", msg, ok)
	}
	if _, ok := rateKey('x', c); ok {
		t.Error("x changed something")
	}
	brokers := startKfake(t)
	stopped := make(chan struct{})
	var msgs []string
	// The run lasts until the keys were pressed: starting it (creating the
	// topic, the clients and the value pool) can take seconds under -race
	// on a loaded machine.
	ctx, endRun := context.WithCancel(context.Background())
	defer endRun()
	go func() {
		defer close(stopped)
		_, _ = loadgen.Produce(ctx, loadgen.ProduceOptions{Brokers: brokers, Topic: "k", CreateTopic: true,
			Profile: loadgen.Profile{Rate: 1000}, Duration: time.Minute, Control: c,
			OnSample: func(loadgen.ProduceSample) {}})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rate, ok := c.Current(); ok && rate == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range []byte{'+', '-', '-'} {
		msg, _ := rateKey(k, c)
		msgs = append(msgs, msg)
	}
	endRun()
	<-stopped
	if strings.Join(msgs, "; ") != "rate now 1250 records/s; rate now 1000 records/s; rate now 800 records/s" {
		t.Errorf("messages %q", msgs)
	}
	if ch := c.Changes(); len(ch) != 3 || ch[2].By != "- key" {
		t.Errorf("changes %+v", ch)
	}
}

func startKfake(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// monitor names what is wrong with a Google Managed Kafka source or a
// limit before it connects to anything.
func TestMonitorRefusesHalfAGCPSourceAndABadLimit(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gcp-project", "shop-prod"}, "--gcp-project and --cluster: give both"},
		{[]string{"--gcp-project", "shop-prod", "--cluster", "orders", "--metrics-url", "http://127.0.0.1:9308/metrics"}, "--metrics-url: give it or --gcp-project, not both"},
		{[]string{"--limit", "ingress=50MB"}, "--limit: ingress: \"50MB\" is not a positive number"},
		{[]string{"--limit", "lag=5"}, "FIGURE one of ingress, egress, connections, requests, load"},
	} {
		_, _, err := runCLI(t, append([]string{"monitor", "--brokers", "127.0.0.1:1", "--duration", "1s"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
