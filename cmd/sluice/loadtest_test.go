package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
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
