package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/version"
)

const adminToken = "root-test-admin-token"

// start starts allot through server.Start on SQLite in a temporary data
// directory, adjusted by adjust, and stops it when the test ends.
func start(t *testing.T, adjust func(*server.Config)) *server.Running {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.Data, cfg.AdminToken, cfg.FailedAuthLimit = "127.0.0.1:0", t.TempDir(), adminToken, 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	if adjust != nil {
		adjust(&cfg)
	}
	r, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Close(ctx)
	})
	return r
}

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records decodes JSON log lines.
func records(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(log) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBuildInfoIsAMetricAndInTheStartLine(t *testing.T) {
	build := version.Info{Version: "v9.8.7", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-01T22:10:53Z", GoVersion: "go1.26.0"}
	var log syncBuffer
	r := start(t, func(c *server.Config) {
		c.Build = build
		c.Logger = slog.New(slog.NewJSONHandler(&log, nil))
	})
	want := `allot_build_info{commit="0123456789abcdef0123456789abcdef01234567",date="2026-12-01T22:10:53Z",go_version="go1.26.0",version="v9.8.7"}`
	if v, ok := scrape(t, r.URL)[want]; !ok || v != 1 {
		t.Errorf("no %s 1 in /metrics", want)
	}
	var serving map[string]any
	for _, rec := range records(t, log.String()) {
		if rec["msg"] == "serving" {
			serving = rec
		}
	}
	for k, v := range map[string]string{"version": build.Version, "commit": build.Commit, "date": build.Date, "go": build.GoVersion} {
		if serving[k] != v {
			t.Errorf("the start line's %s is %v, want %s (line %v)", k, serving[k], v, serving)
		}
	}

	// Without a build given, the binary's own.
	r = start(t, nil)
	own := version.Get()
	want = `allot_build_info{commit="` + own.Commit + `",date="` + own.Date + `",go_version="` + own.GoVersion + `",version="` + own.Version + `"}`
	if _, ok := scrape(t, r.URL)[want]; !ok {
		t.Errorf("no %s in /metrics", want)
	}
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Run("default: on the API's listener", func(t *testing.T) {
		r := start(t, nil)
		if r.MetricsURL != "" {
			t.Errorf("MetricsURL %q", r.MetricsURL)
		}
		if code, _ := get(t, nil, r.URL+"/metrics"); code != 200 {
			t.Errorf("/metrics on the API: %d", code)
		}
		if code, _ := get(t, nil, r.URL+"/debug/pprof/"); code != 404 {
			t.Errorf("/debug/pprof/ on the API: %d", code)
		}
	})
	t.Run("metrics-listen: only there", func(t *testing.T) {
		r := start(t, func(c *server.Config) { c.MetricsListen = "127.0.0.1:0" })
		if code, _ := get(t, nil, r.URL+"/metrics"); code != 404 {
			t.Errorf("/metrics still on the API: %d", code)
		}
		code, body := get(t, nil, r.MetricsURL+"/metrics")
		if code != 200 || !strings.Contains(body, "allot_build_info") || !strings.Contains(body, "allot_queue_depth") {
			t.Errorf("/metrics on its listener: %d %.200s", code, body)
		}
		if code, _ := get(t, nil, r.MetricsURL+"/debug/pprof/"); code != 404 {
			t.Errorf("pprof without --pprof: %d", code)
		}
		if code, _ := get(t, nil, r.MetricsURL+"/api/v1/tenants"); code != 404 {
			t.Errorf("the API on the metrics listener: %d", code)
		}
	})
	t.Run("pprof: on the metrics listener only", func(t *testing.T) {
		r := start(t, func(c *server.Config) { c.MetricsListen, c.Pprof = "127.0.0.1:0", true })
		if code, body := get(t, nil, r.MetricsURL+"/debug/pprof/cmdline"); code != 200 || body == "" {
			t.Errorf("pprof: %d", code)
		}
		if code, _ := get(t, nil, r.URL+"/debug/pprof/cmdline"); code != 404 {
			t.Errorf("pprof on the API: %d", code)
		}
	})
	t.Run("pprof without metrics-listen is refused", func(t *testing.T) {
		cfg := server.DefaultConfig()
		cfg.Listen, cfg.Data, cfg.Pprof, cfg.Logger = "127.0.0.1:0", t.TempDir(), true, slog.New(slog.DiscardHandler)
		if r, err := server.Start(context.Background(), cfg); err == nil {
			r.Close(context.Background())
			t.Fatal("pprof served on the API's listener")
		}
	})
}

// A start that fails leaves no data directory, key file or token behind.
func TestAFailedStartLeavesNothingBehind(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name   string
		adjust func(*server.Config)
	}{
		{"the API's port is taken", func(c *server.Config) { c.Listen = taken.Addr().String() }},
		{"the metrics port is taken", func(c *server.Config) { c.MetricsListen = taken.Addr().String() }},
		{"the TLS pair does not load", func(c *server.Config) { c.TLSCert, c.TLSKey = garbage, garbage }},
		{"no-migrate on a new data directory", func(c *server.Config) { c.NoMigrate = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			cfg := server.DefaultConfig()
			cfg.Listen, cfg.Data, cfg.Logger = "127.0.0.1:0", data, slog.New(slog.DiscardHandler)
			tc.adjust(&cfg)
			r, err := server.Start(context.Background(), cfg)
			if err == nil {
				r.Close(context.Background())
				t.Fatal("started")
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(data)
				t.Errorf("the data directory is left behind, with %v", entries)
			}
		})
	}
}

// TestTreeDepthIsASetting: the tree's depth limit reaches the engine.
func TestTreeDepthIsASetting(t *testing.T) {
	r := start(t, func(c *server.Config) { c.TreeDepth = 2 })
	ctx := context.Background()
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	var err error
	for _, op := range []*quota.CreateTenant{{Tenant: "org"}, {Tenant: "team", Parent: "org"}, {Tenant: "project", Parent: "team"}} {
		if _, err = r.Engine.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
			break
		}
	}
	if quota.ErrorCode(err) != quota.CodeTreeTooDeep {
		t.Fatalf("a third level under --tree-depth 2: %v, want %s", err, quota.CodeTreeTooDeep)
	}
}
