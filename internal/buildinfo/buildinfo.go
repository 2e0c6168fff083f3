// Package buildinfo says which build of Sluice is running: the module
// version and the VCS revision the Go toolchain stamped into the binary,
// or the version a release build set with -ldflags.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is set by release builds:
//
//	go build -ldflags "-X github.com/sluice-dev/sluice/internal/buildinfo.Version=v1.2.0" ./cmd/sluice
//
// When empty, the module version from the build info is used.
var Version string

// Info describes the running binary (GET /v1/version answers it as JSON).
type Info struct {
	// Version is the release version, else the module version Go stamped
	// ("v0.0.0-20261203134212-2da32ff1a2b3+dirty" from a checkout, a tag
	// with go install module@version), else "(devel)".
	Version string `json:"version"`
	// Revision, Time and Modified come from the VCS (git) at build time;
	// empty when the build had none (go run, go test, -buildvcs=false).
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get reads the build info of the running binary.
func Get() Info {
	info := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		info = fromBuildInfo(info, bi)
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	return info
}

func fromBuildInfo(info Info, bi *debug.BuildInfo) Info {
	if info.Version == "" && bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is what `sluice version` prints: the version on the first line,
// then the revision, its time and the toolchain.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sluice %s\n", i.Version)
	if i.Revision != "" {
		rev := i.Revision
		if i.Modified {
			rev += " (modified: uncommitted changes were built)"
		}
		fmt.Fprintf(&b, "  revision  %s\n", rev)
	}
	if i.Time != "" {
		fmt.Fprintf(&b, "  committed %s\n", i.Time)
	}
	fmt.Fprintf(&b, "  go        %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}
