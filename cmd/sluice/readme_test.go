package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admin"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readmeBlock is a fenced block of README.md with the marker above it.
type readmeBlock struct {
	marker string // what follows "<!-- NAME: " in the marker, or ""
	lang   string
	text   string
	line   int
}

// readmeBlocks returns the README's fenced blocks, in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`^<!-- (\w+: .*) -->$`)
	lines := strings.Split(string(b), "\n")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok || lang == "" {
			continue
		}
		blk := readmeBlock{lang: lang, line: i + 1}
		if i > 0 {
			if m := marker.FindStringSubmatch(lines[i-1]); m != nil {
				blk.marker = m[1]
			}
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		blk.text = strings.Join(body, "\n") + "\n"
		out = append(out, blk)
	}
	return out
}

// TestREADMEQuickStart runs the quick start's marked blocks as written,
// in order: `sluice dev`, the topics and the load test, the pipeline file,
// `sluice run` and `sluice status`. Only the addresses move, to private
// ports (through the flags and environment variables sluice documents),
// so the test neither needs nor disturbs a `sluice dev` on 9092.
func TestREADMEQuickStart(t *testing.T) {
	var blocks []readmeBlock
	for _, b := range readmeBlocks(t) {
		if rest, ok := strings.CutPrefix(b.marker, "TestREADMEQuickStart: "); ok {
			b.marker = rest
			blocks = append(blocks, b)
		}
	}
	if len(blocks) < 4 {
		t.Fatalf("README.md marks %d blocks for this test; the quick start has at least 4", len(blocks))
	}
	host := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	kafkaPort, adminAddr, pubsubPort := freePort(t), host(freePort(t)), freePort(t)
	kafkaAddr := host(kafkaPort)
	devPorts := []string{"--kafka-port", fmt.Sprint(kafkaPort), "--registry-port", fmt.Sprint(freePort(t)),
		"--bigquery-rest-port", fmt.Sprint(freePort(t)), "--bigquery-grpc-port", fmt.Sprint(freePort(t)),
		"--pubsub-port", fmt.Sprint(pubsubPort), "--log-level", "warn"}
	t.Setenv("SLUICE_BROKERS", kafkaAddr)
	t.Setenv("SLUICE_ADMIN", "http://"+adminAddr)
	t.Setenv("PUBSUB_EMULATOR_HOST", host(pubsubPort))
	moveAddrs := strings.NewReplacer("127.0.0.1:9092", kafkaAddr, "localhost:9092", kafkaAddr, "127.0.0.1:8080", adminAddr)
	t.Chdir(t.TempDir())

	var runOut *background
	ran := map[string]bool{}
	for _, b := range blocks {
		if name, ok := strings.CutPrefix(b.marker, "file "); ok {
			if err := os.WriteFile(name, []byte(moveAddrs.Replace(b.text)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if b.marker != "run" || b.lang != "sh" {
			t.Fatalf("README.md:%d: marker %q on a %s block; want run on sh, or file NAME", b.line, b.marker, b.lang)
		}
		for _, line := range strings.Split(strings.ReplaceAll(b.text, "\\\n", " "), "\n") {
			words, err := shellWords(line)
			if err != nil {
				t.Fatalf("README.md:%d: %v", b.line, err)
			}
			if len(words) == 0 {
				continue
			}
			if words[0] != "sluice" || len(words) < 2 {
				t.Fatalf("README.md:%d: the quick start runs %q; this test runs sluice commands only", b.line, line)
			}
			args := words[1:]
			ran[args[0]] = true
			switch args[0] {
			case "dev":
				startCLI(t, append(args, devPorts...)...).waitOutput(t, 60*time.Second, "Press Ctrl-C to stop.")
			case "run":
				runOut = startCLI(t, append(args, "--log-level", "warn")...)
			case "status":
				waitForRecordsOut(t, runOut, "orders-copy", 5000)
				out, _, err := runCLI(t, args...)
				if err != nil || !regexp.MustCompile(`orders-copy\s+running\s+1\s`).MatchString(out) || !strings.Contains(out, "5,000") {
					t.Fatalf("README.md:%d: sluice %s: %v\n%s", b.line, strings.Join(args, " "), err, out)
				}
			default:
				if out, errOut, err := runCLI(t, args...); err != nil {
					t.Fatalf("README.md:%d: sluice %s: %v\n%s%s", b.line, strings.Join(args, " "), err, out, errOut)
				}
			}
		}
	}
	for _, c := range []string{"dev", "topics", "loadtest", "run", "status"} {
		if !ran[c] {
			t.Fatalf("the quick start no longer runs sluice %s; update this test with it", c)
		}
	}
	// The records are in the user's topic, and the group's offsets say so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics("orders-copy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < 5000 && ctx.Err() == nil {
		got += cl.PollFetches(ctx).NumRecords()
	}
	if got != 5000 {
		t.Fatalf("orders-copy holds %d records, want the 5,000 of orders", got)
	}
	adm := kadm.NewClient(cl)
	for {
		offs, err := adm.FetchOffsets(ctx, "orders-copy")
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		if err == nil && sum == 5000 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group orders-copy committed %d of 5,000 offsets (%v)", sum, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForRecordsOut polls the admin API through `sluice status --json`
// until the pipeline wrote want records.
func waitForRecordsOut(t *testing.T, run *background, name string, want int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list []admin.Summary
		out, _, err := runCLI(t, "status", "--json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &list)
		}
		if i := slices.IndexFunc(list, func(s admin.Summary) bool { return s.Name == name }); i >= 0 && list[i].RecordsOut >= want {
			return
		}
		if time.Now().After(deadline) {
			log := ""
			if run != nil {
				log = run.out.String()
			}
			t.Fatalf("%s did not write %d records within 60 s: %v\n%s\nsluice run:\n%s", name, want, err, out, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestREADMEPipelineBlocksValidate parses every YAML block of README.md
// that is a whole pipeline file, as `sluice validate` would: a renamed or
// mistyped key in the docs fails here.
func TestREADMEPipelineBlocksValidate(t *testing.T) {
	anyEnv := func(string) (string, bool) { return "postgres://u@h/db", true }
	checked := 0
	for _, b := range readmeBlocks(t) {
		if b.lang != "yaml" {
			continue
		}
		whole := (strings.HasPrefix(b.text, "name:") || strings.Contains(b.text, "\nname:") || strings.Contains(b.text, "pipelines:")) &&
			strings.Contains(b.text, "\nsource:") && strings.Contains(b.text, "\nsink:")
		if !whole {
			continue
		}
		if _, err := config.Parse([]byte(b.text), anyEnv); err != nil {
			t.Errorf("README.md:%d: %v\n%s", b.line, err, b.text)
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d pipeline files found in README.md", checked)
	}
	t.Logf("%d pipeline files in README.md validate", checked)
}
