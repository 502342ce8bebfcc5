// Package version says which allot this is: the version, the commit, the
// commit's date and the Go version, read from the build information Go
// stamps into every binary, or from -ldflags -X for release builds.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Set by release builds:
//
//	go build -ldflags "-X github.com/allot-dev/allot/internal/version.version=v1.2.0 \
//	  -X github.com/allot-dev/allot/internal/version.commit=… -X github.com/allot-dev/allot/internal/version.date=…"
//
// These are the only package variables allot has: -X can set nothing else.
// Empty means: take it from the build information.
var version, commit, date string

// Info describes one build of allot.
type Info struct {
	Version   string `json:"version"`    // v1.2.0, a Go pseudo-version, or "devel"
	Commit    string `json:"commit"`     // the full revision, "-dirty" appended for uncommitted changes; "unknown" if not recorded
	Date      string `json:"date"`       // the commit's time (RFC 3339), so two builds of one commit agree; "unknown" if not recorded
	GoVersion string `json:"go_version"` // the toolchain that built it
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuild(bi, Info{Version: version, Commit: commit, Date: date})
}

// FromBuild combines Go's build information (nil if there is none) with
// the fields set at link time, which win.
func FromBuild(bi *debug.BuildInfo, linked Info) Info {
	info := Info{Version: "devel", Commit: "unknown", Date: "unknown", GoVersion: runtime.Version()}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.Date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && info.Commit != "unknown" && !strings.HasSuffix(info.Commit, "-dirty") {
			info.Commit += "-dirty"
		}
	}
	if linked.Version != "" {
		info.Version = linked.Version
	}
	if linked.Commit != "" {
		info.Commit = linked.Commit
	}
	if linked.Date != "" {
		info.Date = linked.Date
	}
	return info
}

// String is the one-line form: "allot v1.2.0 (commit 3dbcd11, 2026-12-01T22:10:53Z, go1.26.8)".
func (i Info) String() string {
	return "allot " + i.Version + " (commit " + i.Short() + ", " + i.Date + ", " + i.GoVersion + ")"
}

// Short is the commit abbreviated to 12 characters, as in Go's pseudo-versions.
func (i Info) Short() string {
	c, dirty := strings.CutSuffix(i.Commit, "-dirty")
	if len(c) > 12 {
		c = c[:12]
	}
	if dirty {
		c += "-dirty"
	}
	return c
}
