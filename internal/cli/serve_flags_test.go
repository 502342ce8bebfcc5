package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/testserver"
	"github.com/allot-dev/allot/internal/version"
)

func TestVersionCommand(t *testing.T) {
	v := version.Get()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := local(t, nil, args...)
		want := "allot " + v.Version + "\n  commit  " + v.Commit + "\n  date    " + v.Date + "\n  go      " + v.GoVersion + "\n"
		if r.code != 0 || r.stdout != want {
			t.Errorf("allot %s: exit %d\n%s\nwant\n%s", args[0], r.code, r.stdout, want)
		}
	}
	if r := local(t, nil, "version", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"go_version": "`+v.GoVersion+`"`) {
		t.Errorf("allot version -o json: exit %d\n%s", r.code, r.stdout)
	}
}

func TestServeCheckShowsTheNewSettings(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "allot", cert, key)
	r := local(t, map[string]string{"ALLOT_TLS_CERT": cert, "ALLOT_TLS_KEY": key, "ALLOT_METRICS_LISTEN": "10.0.0.5:9090"}, "serve", "--check")
	for _, w := range []string{"tls      " + cert + ", " + key, "metrics  10.0.0.5:9090", "version  " + version.Get().Version} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("serve --check lacks %q: exit %d\n%s%s", w, r.code, r.stdout, r.stderr)
		}
	}
}

func TestServeRefusesBadNewSettings(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "allot", cert, key)
	other, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	ca.Issue(t, "other", other, otherKey)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"log level", []string{"--log-level", "verbose"}, "log-level: must be debug, info, warn or error"},
		{"pprof on the API", []string{"--pprof"}, "pprof: profiles are served only on --metrics-listen"},
		{"metrics address", []string{"--metrics-listen", "9090"}, "metrics-listen:"},
		{"a certificate without its key", []string{"--tls-cert", cert}, "tls-cert and tls-key: give both or neither"},
		{"a key of another certificate", []string{"--tls-cert", cert, "--tls-key", otherKey}, "tls-cert, tls-key:"},
		{"admin token file in no directory", []string{"--admin-token-file", filepath.Join(dir, "nope", "token")}, "admin-token-file:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := local(t, nil, append([]string{"serve", "--check"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 and %q:\n%s", r.code, tc.want, r.stderr)
			}
		})
	}
}
