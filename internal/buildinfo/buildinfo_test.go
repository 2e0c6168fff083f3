package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionComesFromTheBuildInfoUnlessSetByLdflags(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/sluice-dev/sluice", Version: "v0.0.0-20261203134212-2da32ff1a2b3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "2da32ff1a2b3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.time", Value: "2026-12-03T13:42:12Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := fromBuildInfo(Info{GoVersion: "go1.26.8", Platform: "linux/amd64"}, bi)
	if got.Version != "v0.0.0-20261203134212-2da32ff1a2b3+dirty" || got.Revision != "2da32ff1a2b3c4d5e6f708192a3b4c5d6e7f8091" || got.Time != "2026-12-03T13:42:12Z" || !got.Modified {
		t.Fatalf("from build info: %+v", got)
	}
	text := got.String()
	for _, want := range []string{"sluice v0.0.0-20261203134212-2da32ff1a2b3+dirty\n", "revision  2da32ff1a2b3c4d5e6f708192a3b4c5d6e7f8091 (modified", "committed 2026-12-03T13:42:12Z", "go        go1.26.8 linux/amd64"} {
		if !strings.Contains(text, want) {
			t.Errorf("version text lacks %q:\n%s", want, text)
		}
	}
	release := fromBuildInfo(Info{Version: "v1.2.0"}, bi)
	if release.Version != "v1.2.0" || release.Revision == "" {
		t.Fatalf("a version set with -ldflags must win and keep the revision: %+v", release)
	}
	if dev := Get(); dev.Version == "" || dev.Version == "dev" {
		t.Fatalf("Get() = %+v: want the module version or (devel)", dev)
	}
}
