package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/buildinfo"
)

// TestVersionIsNotDev builds the binary as a release would (a version
// set with -ldflags) and runs `sluice version`: it printed "dev" whatever
// was built. From a git checkout the revision built must be shown too.
func TestVersionIsNotDev(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-buildvcs=auto",
		"-ldflags", "-X github.com/sluice-dev/sluice/internal/buildinfo.Version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("sluice version: %v", err)
	}
	if !strings.HasPrefix(string(out), "sluice v9.8.7-test\n") || !strings.Contains(string(out), "go        go1.") {
		t.Fatalf("sluice version printed:\n%s", out)
	}
	js, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info buildinfo.Info
	if err := json.Unmarshal(js, &info); err != nil || info.Version != "v9.8.7-test" {
		t.Fatalf("sluice version --json: %s (%v)", js, err)
	}
	// Go stamps the revision only when the module root holds a .git
	// directory (a clone; not a git worktree, whose .git is a file) and
	// -buildvcs is not false.
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	st, statErr := os.Stat(filepath.Join("..", "..", ".git"))
	if err != nil || statErr != nil || !st.IsDir() {
		t.Logf("not a git clone here: the revision is not checked (%s)", strings.TrimSpace(string(out)))
		return
	}
	if want := strings.TrimSpace(string(head)); info.Revision != want || !strings.Contains(string(out), "revision  "+want) {
		t.Fatalf("revision %q, want HEAD %s:\n%s", info.Revision, want, out)
	}
}
