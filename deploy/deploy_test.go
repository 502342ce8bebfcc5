// Package deploy_test checks the systemd unit and its environment file.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/cli"
)

// unit reads a unit file into section → key → values (a key may repeat).
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// The unit has the hardening and the settings the README promises. Where
// systemd-analyze runs (TestSystemdAnalyze), systemd checks the rest.
func TestTheUnitIsHardened(t *testing.T) {
	u := unit(t, "allot.service")
	for _, want := range []struct{ section, key, value string }{
		{"Service", "ExecStart", "/usr/local/bin/allot serve"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "EnvironmentFile", "/etc/allot/allot.env"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "StateDirectory", "allot"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "Restart", "on-failure"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u[want.section][want.key]; len(got) != 1 || got[0] != want.value {
			t.Errorf("[%s] %s = %q, want %q", want.section, want.key, got, want.value)
		}
	}
	env := strings.Join(u["Service"]["Environment"], " ")
	if !strings.Contains(env, "ALLOT_DATA=%S/allot") || !strings.Contains(env, "ALLOT_ADMIN_TOKEN_FILE=%S/allot/admin-token") {
		t.Errorf("Environment = %q: the data and the admin token belong in the state directory", env)
	}
}

// Every variable deploy/allot.env sets, or shows commented out, is one
// allot serve reads, and the settings it makes are valid.
func TestTheEnvironmentFileIsValid(t *testing.T) {
	var help bytes.Buffer
	cli.Run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, strings.NewReader(""), &help, &help)
	known := map[string]bool{"ALLOT_ADMIN_TOKEN": true}
	for _, m := range regexp.MustCompile(`\((ALLOT_[A-Z_]+)\)`).FindAllStringSubmatch(help.String(), -1) {
		known[m[1]] = true
	}
	if len(known) < 20 {
		t.Fatalf("found only %d variables in serve --help:\n%s", len(known), help.String())
	}
	b, err := os.ReadFile("allot.env")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ALLOT_DATA": t.TempDir()}
	assignment := regexp.MustCompile(`^(#\s*)?(ALLOT_[A-Z_]+)=(.*)$`)
	for n, line := range strings.Split(string(b), "\n") {
		m := assignment.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if !known[m[2]] {
			t.Errorf("allot.env:%d: %s is not a setting of allot serve", n+1, m[2])
		}
		if m[1] == "" {
			env[m[2]] = m[3]
		}
	}
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), []string{"serve", "--check"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("serve --check with allot.env: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "listen   0.0.0.0:8080") {
		t.Errorf("serve --check:\n%s", out.String())
	}
}

// systemd-analyze verify checks the unit as systemd would load it, and
// security rates its exposure. Both need systemd's tools, not systemd
// running; without them the test says so and skips.
func TestSystemdAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (Debian: the systemd package); TestTheUnitIsHardened checks what it can without it")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "allot")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/allot").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src, err := os.ReadFile("allot.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the executable to exist: point the copy at the build.
	service := filepath.Join(dir, "allot.service")
	if err := os.WriteFile(service, bytes.ReplaceAll(src, []byte("ExecStart=/usr/local/bin/allot"), []byte("ExecStart="+bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", service).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		// Unknown keys are only warned about: any output is a failure.
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=yes", service).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for allot.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0 (systemd calls up to 2 \"OK\"):\n%s", level, out)
	}
}
