package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMemoryStaysBoundedUnderBacklog: the promise that memory stays
// bounded under backlog, measured as a user would, on the process. A
// `sluice run` whose Kafka sink stops answering (a black-holed broker)
// faces a backlog of 200 MB of JSON records, with transforms on the
// JSON fast path; limits.max_in_flight_bytes is 16 MiB. It reads up to
// the cap and stops: its resident memory stays far below the backlog,
// and when the sink answers again every record arrives.
func TestMemoryStaysBoundedUnderBacklog(t *testing.T) {
	const (
		n        = 200000
		valueLen = 1000
		capBytes = 16 << 20
		// One read (max.poll.records, 5,000 records of about 2 KB
		// counted) may overshoot the cap, as the limits doc says.
		maxOver = 5000 * 2100
		// The process's own memory (about 40 MB), the in-flight bytes
		// with their overheads and the garbage collector's headroom, and
		// the Kafka client's buffers: 87-142 MiB measured. Reading the
		// whole backlog would hold its 190 MB and its reshaped copy.
		maxRSS = 256 << 20
	)
	bin := buildSluice(t)
	src := startBroker(t).ListenAddrs()
	createTopic(t, src, "backlog", 4)
	pb := startProxiedBroker(t)
	createTopic(t, pb.brokers, "out", 4)

	admin := freeAddr(t)
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`
name: backlog
source:
  kafka: {brokers: [%s], topics: [backlog], group: backlog}
format: {value: json}
batch: {max_records: 5000}
limits: {max_in_flight_records: 100000, max_in_flight_bytes: %d}
transforms:
  - filter: 'value.id >= 0'
  - set: {doubled: 'value.id * 2', tag: '"seen"'}
sink:
  kafka: {brokers: [%s], topic: out, format: {value: json}}
`, src[0], capBytes, pb.brokers[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--log-level", "warn", "--admin", admin, file)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	status := func() map[string]any { return adminStatus(t, admin, "backlog") }
	// One record through, so the sink is connected before it goes quiet.
	produceBacklog(t, src, 0, 1, valueLen)
	eventually(t, 60*time.Second, "the first record written", func() bool { return num(status(), "records_out") >= 1 })
	if err := pb.proxy.BlackHole(); err != nil {
		t.Fatal(err)
	}
	// Paused while the backlog is produced, so the reading meets all of
	// it at once and fills whole batches (a slow producer would have it
	// read in small ones).
	adminPost(t, admin, "/v1/pipelines/backlog/pause")
	produceBacklog(t, src, 1, n-1, valueLen)
	adminPost(t, admin, "/v1/pipelines/backlog/resume")
	// Batches of 5,000 records of about 2 KB each (the value and its
	// reshaped copy), so the byte cap, not the number of batches the
	// engine keeps open, is what stops the reading.
	eventually(t, 60*time.Second, "the in-flight bytes near the cap", func() bool { return num(status(), "in_flight_bytes") >= capBytes*3/4 })
	// The reading has stopped at the cap: watch the process a while.
	var peak int64
	for range 20 {
		peak = max(peak, rss(t, cmd.Process.Pid))
		time.Sleep(250 * time.Millisecond)
	}
	st := status()
	in, inFlight := num(st, "records_in"), num(st, "in_flight_bytes")
	t.Logf("backlog %d records (%d MB), sink black-holed: read %d, %d MiB in flight (cap %d MiB), peak RSS %d MiB",
		n, n*valueLen>>20, int64(in), int64(inFlight)>>20, capBytes>>20, peak>>20)
	if in > n/2 {
		t.Errorf("read %d of %d records with the sink stuck: reading did not stop at the cap", int64(in), n)
	}
	if inFlight > capBytes+maxOver {
		t.Errorf("%d bytes in flight, over the cap %d by more than one read (%d)", int64(inFlight), capBytes, maxOver)
	}
	if peak > maxRSS {
		t.Errorf("peak resident memory %d MiB with a %d MiB in-flight cap, want at most %d MiB", peak>>20, capBytes>>20, maxRSS>>20)
	}

	if err := pb.proxy.Pass(); err != nil {
		t.Fatal(err)
	}
	adm := adminClientWith(t, pb.brokers, pb.direct)
	eventually(t, 3*time.Minute, "every record at the sink", func() bool {
		total := int64(0)
		for _, end := range endOffsets(t, adm, "out") {
			total += end
		}
		return total >= n
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v", err)
	}
	if out := endOffsets(t, adm, "out"); sum(out) < n {
		t.Fatalf("%d records at the sink, want %d", sum(out), n)
	}
}

// produceBacklog produces n JSON values of about size bytes each.
func produceBacklog(t *testing.T, brokers []string, from, n, size int) {
	t.Helper()
	pad := strings.Repeat("x", size-60)
	produceAll(t, brokers, nil, from, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "backlog", Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, `{"id":%d,"kind":"event","pad":%q}`, i, pad)}
	})
}

// rss is the resident memory of process pid, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// freeAddr is a loopback address nothing listens on (for a child
// process to listen on).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// adminStatus is the pipeline's status from the admin API (empty while
// the API is not up yet).
func adminStatus(t *testing.T, addr, name string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/pipelines/" + name)
	if err != nil {
		return map[string]any{}
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return map[string]any{}
	}
	if st, ok := v["status"].(map[string]any); ok {
		return st
	}
	return v
}

// adminPost makes a mutating admin call (no token: loopback, none set).
func adminPost(t *testing.T, addr, path string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// num is the number under key in a decoded JSON object, 0 if none.
func num(v map[string]any, key string) float64 {
	f, _ := v[key].(float64)
	return f
}
