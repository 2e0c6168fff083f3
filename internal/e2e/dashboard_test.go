package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/sluice-dev/sluice/internal/assembly"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// chromiumPath finds a Chromium or Chrome binary: $SLUICE_CHROMIUM, then
// the usual names on PATH. Without one the test skips, unless
// SLUICE_REQUIRE_BROWSER=1 (CI), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found: install Debian's chromium (apt-get install -y chromium) or set SLUICE_CHROMIUM to a Chrome binary"
	if os.Getenv("SLUICE_REQUIRE_BROWSER") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where screenshots go: $SLUICE_ARTIFACTS, or a temporary
// directory of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts headless Chromium for the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1200),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// waitJS evaluates a boolean expression in the page until it holds.
// (Evaluated through DevTools, so the page's script policy does not apply.)
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting in the browser for %s (last error: %v)", d, what, lastErr)
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestDashboardInChromium opens the dashboard of a running Kafka -> Kafka
// pipeline in headless Chromium, sees the pipeline and its throughput,
// clicks Pause and checks through the API that it paused, then Resume.
func TestDashboardInChromium(t *testing.T) {
	browser := newBrowser(t) // skips early without a browser
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "clicks", 6)
	createTopic(t, brokers, "clicks.copy", 6)
	p := parsePipeline(t, fmt.Sprintf(`
name: clicks-to-kafka
source:
  kafka: {brokers: [%s], topics: [clicks], group: clicks, consumers: 2, properties: {max.poll.records: 500, fetch.max.wait.ms: 200}}
batch: {max_records: 500}
sink:
  kafka: {brokers: [%s], topic: "{{.Topic}}.copy"}
`, brokers[0], brokers[0]))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	produced := make(chan error, 1)
	go func() {
		_, err := produceSteadily(ctx, brokers, "clicks", 3000, func(int) bool { return false })
		produced <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		<-produced
	})
	base := serveAdmin(t, ctx, b, 250*time.Millisecond, testLogger(t))
	dir := artifactDir(t)

	if err := chromedp.Do(browser, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitJS(t, browser, 30*time.Second, "the pipeline in the list and its detail",
		`!!document.querySelector('#pipeline-list li[data-name="clicks-to-kafka"]') && document.querySelector('#p-name').textContent === "clicks-to-kafka"`)
	// No admin.token here: the page must not offer a token control, and
	// its footer names the build.
	waitJS(t, browser, 30*time.Second, "no Admin token button without a token, and the version in the footer",
		`document.querySelector('#btn-token').hidden && /^sluice \S/.test(document.querySelector('#version').textContent)`)
	waitJS(t, browser, 30*time.Second, "a non-zero throughput",
		`Number(document.querySelector('#kpi-out-rate').dataset.value) > 0 && Number(document.querySelector('#kpi-in-rate').dataset.value) > 0`)
	waitJS(t, browser, 30*time.Second, "batches in the history table and two consumers",
		`document.querySelectorAll('#batches tr:not(.empty-row)').length > 0 && document.querySelectorAll('#consumers button.remove-consumer').length === 2`)
	waitJS(t, browser, 30*time.Second, "the property editor",
		`!!document.querySelector('#props-editor input[data-name="max.poll.records"]')`)
	// Let the charts gather a few seconds of samples for the screenshot.
	eventually(t, 30*time.Second, "six seconds of samples", func() bool {
		var d struct{ Series []struct{} }
		apiCall(t, "GET", base+"/v1/pipelines/clicks-to-kafka", "", &d)
		return len(d.Series) >= 24
	})
	time.Sleep(1200 * time.Millisecond) // one more poll of the page, for the picture only
	screenshot(t, browser, dir, "dashboard-running.png")
	rate, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS("#kpi-out-rate")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard shows %s records/s out", rate)

	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#btn-pause"))); err != nil {
		t.Fatalf("clicking Pause: %v", err)
	}
	eventually(t, 30*time.Second, "the API to report paused", func() bool {
		return pipelineDetail(t, base, "clicks-to-kafka").State == pipeline.StatePaused
	})
	waitJS(t, browser, 30*time.Second, "the dashboard to show paused and offer Resume",
		`document.querySelector('#p-state').textContent === "paused" && !document.querySelector('#btn-resume').hidden && document.querySelector('#btn-pause').hidden`)
	// What was read before the pause is still written; then nothing.
	eventually(t, 30*time.Second, "the throughput shown to fall to zero", func() bool {
		v, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#kpi-out-rate').dataset.value`))
		f, _ := strconv.ParseFloat(v, 64)
		return err == nil && f == 0
	})
	// A rate of zero over one sample is not yet the end of the writes: a
	// write slower than a sample (a loaded machine) lands after it. Every
	// record read is written (no filter here), so the pause has drained
	// once nothing is in flight and out has caught up with in.
	var held int64
	eventually(t, 30*time.Second, "the records read before the pause all written", func() bool {
		d := pipelineDetail(t, base, "clicks-to-kafka")
		held = d.RecordsOut
		return d.State == pipeline.StatePaused && d.InFlightRecords == 0 && d.RecordsOut == d.RecordsIn
	})
	screenshot(t, browser, dir, "dashboard-paused.png")
	if d := pipelineDetail(t, base, "clicks-to-kafka"); d.RecordsOut != held || d.RecordsIn != held {
		t.Fatalf("%d records read and %d written while paused", d.RecordsIn-held, d.RecordsOut-held)
	}

	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#btn-resume"))); err != nil {
		t.Fatalf("clicking Resume: %v", err)
	}
	eventually(t, 30*time.Second, "the API to report running and records moving again", func() bool {
		d := pipelineDetail(t, base, "clicks-to-kafka")
		return d.State == pipeline.StateRunning && d.RecordsOut > held
	})
}

// TestDashboardMergeNowInChromium runs Kafka -> SQLite with a staging
// table and a merge, opens the dashboard, clicks "Merge now" and expects
// the merge history (API and page) to show a manual merge next to the
// ones the record count triggered.
func TestDashboardMergeNowInChromium(t *testing.T) {
	browser := newBrowser(t)
	c := startBroker(t)
	brokers := c.ListenAddrs()
	createTopic(t, brokers, "films", 3)
	p := parsePipeline(t, fmt.Sprintf(`
name: films-to-sqlite
source:
  kafka: {brokers: [%s], topics: [films], group: films, properties: {fetch.max.wait.ms: 100}}
format: {value: json}
batch: {max_records: 500}
sink:
  sqlite:
    path: %s
    staging_table: films_staging
    create_table: true
    merge: {statements: ["DELETE FROM {{.Table}} WHERE _sluice_batch <= {{.HighWaterMark}}"], every_records: 1000, mode: pause}
`, brokers[0], filepath.Join(t.TempDir(), "films.db")))
	b, err := assembly.Build(context.Background(), p, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Pipeline.Run(ctx) }()
	produced := make(chan error, 1)
	go func() {
		_, err := produceSteadily(ctx, brokers, "films", 1000, func(int) bool { return false })
		produced <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		<-produced
	})
	base := serveAdmin(t, ctx, b, 250*time.Millisecond, testLogger(t))
	dir := artifactDir(t)

	merges := func() (manual, byCount int) {
		d := pipelineDetail(t, base, "films-to-sqlite")
		if d.Merge == nil {
			t.Fatal("status has no merge section for a sink that merges")
		}
		for _, m := range d.Merge.History {
			switch {
			case m.Error != "":
				t.Fatalf("merge failed: %+v", m)
			case m.Trigger == "manual":
				manual++
			case m.Trigger == "records":
				byCount++
			}
		}
		return manual, byCount
	}
	eventually(t, 60*time.Second, "a merge triggered by the record count", func() bool { _, n := merges(); return n > 0 })

	if err := chromedp.Do(browser, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitJS(t, browser, 30*time.Second, "the merge button and history",
		`!document.querySelector('#btn-merge').hidden && !document.querySelector('#merge-card').hidden && document.querySelectorAll('#merges tr:not(.empty-row)').length > 0`)
	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#btn-merge"))); err != nil {
		t.Fatalf("clicking Merge now: %v", err)
	}
	eventually(t, 30*time.Second, "a manual merge in the history", func() bool { n, _ := merges(); return n == 1 })
	waitJS(t, browser, 30*time.Second, "the manual merge on the page",
		`[...document.querySelectorAll('#merges .trigger')].some((e) => e.textContent === "manual")`)
	time.Sleep(1200 * time.Millisecond) // one more poll of the page, for the picture only
	screenshot(t, browser, dir, "dashboard-merge.png")
}
