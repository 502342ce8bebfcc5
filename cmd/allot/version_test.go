package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A release build's version, set with -ldflags -X as scripts/release.sh
// does, is what every place that names the version shows: allot version,
// --version, serve --check, the start-up log line, /metrics and the
// User-Agent of webhook deliveries.
func TestTheVersionIsShownEverywhere(t *testing.T) {
	const (
		pkg     = "github.com/allot-dev/allot/internal/version"
		version = "v1.2.3-test"
		commit  = "0123456789abcdef0123456789abcdef01234567"
		date    = "2026-12-01T22:10:53Z"
	)
	bin := filepath.Join(t.TempDir(), "allot")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version="+version+" -X "+pkg+".commit="+commit+" -X "+pkg+".date="+date, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "allot " + version + "\n  commit  " + commit + "\n  date    " + date + "\n  go      " + strings.TrimSpace(string(goVersion)) + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != want {
			t.Errorf("allot %s: %v\n%s\nwant\n%s", args[0], err, out, want)
		}
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	var fields map[string]string
	if err != nil || json.Unmarshal(out, &fields) != nil || fields["version"] != version || fields["commit"] != commit || fields["date"] != date || fields["go_version"] == "" {
		t.Errorf("allot version -o json: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "serve", "--check").Output(); err != nil || !strings.Contains(string(out), "version  "+version+" (commit "+commit+", "+date) {
		t.Errorf("serve --check: %v\n%s", err, out)
	}

	// serve: the start-up line, /metrics and a webhook delivery.
	agents := make(chan string, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case agents <- r.Header.Get("User-Agent"):
		default:
		}
	}))
	defer hook.Close()
	p := startBinary(t, bin, t.TempDir(), "ALLOT_ADMIN_TOKEN="+adminToken, "ALLOT_WEBHOOK_ALLOW=127.0.0.1")
	if log := p.stderr.String(); !strings.Contains(log, "msg=serving") || !strings.Contains(log, "version="+version) || !strings.Contains(log, "commit="+commit) {
		t.Errorf("the start-up log line lacks the version:\n%s", log)
	}
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	resp.Write(&metrics)
	resp.Body.Close()
	if !strings.Contains(metrics.String(), `allot_build_info{commit="`+commit+`",date="`+date+`",go_version="`) ||
		!strings.Contains(metrics.String(), `version="`+version+`"} 1`) {
		t.Errorf("no allot_build_info for %s in /metrics", version)
	}
	if code, body := p.req(t, "POST", "/api/v1/webhooks", adminToken, `{"url":"`+hook.URL+`/hook","secret":"a-webhook-secret-of-some-length","events":["*"]}`); code != 201 {
		t.Fatalf("creating the webhook: %d %s", code, body)
	}
	if code, body := p.req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"acme"}`); code != 201 {
		t.Fatalf("creating a tenant: %d %s", code, body)
	}
	select {
	case ua := <-agents:
		if ua != "allot-webhook/"+version {
			t.Errorf("webhook User-Agent %q, want allot-webhook/%s", ua, version)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery")
	}
}
