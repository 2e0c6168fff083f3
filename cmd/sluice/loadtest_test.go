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
