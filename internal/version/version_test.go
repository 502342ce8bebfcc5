package version_test

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/allot-dev/allot/internal/version"
)

func TestFromBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.0.0-20261201221053-3dbcd1105468"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "3dbcd1105468cbe8f966ab7ac613a2bcc8d32761"}, {Key: "vcs.time", Value: "2026-12-01T22:10:53Z"}}}
	dirty := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name   string
		bi     *debug.BuildInfo
		linked version.Info
		want   version.Info
	}{
		{"no build information", nil, version.Info{},
			version.Info{Version: "devel", Commit: "unknown", Date: "unknown", GoVersion: runtime.Version()}},
		{"stamped by go build in a repository", stamped, version.Info{},
			version.Info{Version: "v0.0.0-20261201221053-3dbcd1105468", Commit: "3dbcd1105468cbe8f966ab7ac613a2bcc8d32761", Date: "2026-12-01T22:10:53Z", GoVersion: "go1.26.1"}},
		{"uncommitted changes", dirty, version.Info{},
			version.Info{Version: "devel", Commit: "abc-dirty", Date: "unknown", GoVersion: "go1.26.1"}},
		{"a release build's -X wins", stamped, version.Info{Version: "v1.2.0", Commit: "ffff", Date: "2026-12-02T00:00:00Z"},
			version.Info{Version: "v1.2.0", Commit: "ffff", Date: "2026-12-02T00:00:00Z", GoVersion: "go1.26.1"}},
		{"-X of the version alone", stamped, version.Info{Version: "v1.2.0"},
			version.Info{Version: "v1.2.0", Commit: "3dbcd1105468cbe8f966ab7ac613a2bcc8d32761", Date: "2026-12-01T22:10:53Z", GoVersion: "go1.26.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := version.FromBuild(tt.bi, tt.linked); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	i := version.Info{Version: "v1.2.0", Commit: "3dbcd1105468cbe8f966ab7ac613a2bcc8d32761-dirty", Date: "2026-12-01T22:10:53Z", GoVersion: "go1.26.1"}
	if got, want := i.String(), "allot v1.2.0 (commit 3dbcd1105468-dirty, 2026-12-01T22:10:53Z, go1.26.1)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestGetHasEveryField(t *testing.T) {
	i := version.Get()
	if i.Version == "" || i.Commit == "" || i.Date == "" || i.GoVersion != runtime.Version() {
		t.Errorf("Get() = %+v: a field is empty or the Go version is not this toolchain's", i)
	}
}
