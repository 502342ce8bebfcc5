package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot/internal/cli"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/testserver"
)

// runWith runs the CLI with exactly env as its environment.
func runWith(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// A mistake in how allot is called is one line that names it and the
// closest match, then a pointer to --help: exit 2, never the whole usage.
func TestMistakesAreOneLineWithTheClosestMatch(t *testing.T) {
	srv := setUp(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown_subcommand", []string{"tenants", "lst"}},
		{"unknown_command", []string{"tenant", "list"}},
		{"unknown_nested", []string{"webhooks", "lsit"}},
		{"unknown_flag", []string{"tenants", "list", "--tokn", "x"}},
		{"unknown_flag_no_match", []string{"tenants", "list", "--colour"}},
		{"unknown_shorthand", []string{"tenants", "list", "-x"}},
		{"flag_without_value", []string{"events", "--tenant"}},
		{"flag_bad_value", []string{"events", "--limit", "many"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := allot(t, srv, "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2", r.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if strings.Contains(r.stderr, "Usage:") || strings.Count(r.stderr, "\n") != 2 {
				t.Errorf("stderr is not one line and a pointer to --help:\n%s", r.stderr)
			}
			golden.Assert(t, filepath.Join("testdata", "mistake_"+tc.name+".golden"), []byte(r.stderr))
		})
	}
	// A group on its own still shows its commands, and succeeds.
	if r := allot(t, srv, "", "tenants"); r.code != 0 || !strings.Contains(r.stdout, "allot tenants [command]") ||
		strings.Contains(r.stdout, "allot tenants [flags]") {
		t.Errorf("allot tenants: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// --server takes host:port without a scheme; anything else that is not a
// URL gets one line that says what is expected.
func TestServerWithoutScheme(t *testing.T) {
	srv := setUp(t)
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	for _, env := range []map[string]string{
		{"ALLOT_SERVER": hostPort, "ALLOT_TOKEN": srv.AdminToken},
		{"ALLOT_TOKEN": srv.AdminToken, "--server": hostPort},
	} {
		args := []string{"tenants", "list"}
		if s := env["--server"]; s != "" {
			args = append(args, "--server", s)
		}
		if r := runWith(t, context.Background(), env, args...); r.code != 0 || !strings.Contains(r.stdout, "acme") {
			t.Errorf("allot %v with %v: exit %d\n%s%s", args, env, r.code, r.stdout, r.stderr)
		}
	}
	r := runWith(t, context.Background(), map[string]string{"ALLOT_TOKEN": srv.AdminToken}, "tenants", "list", "--server", "ftp://example.com")
	if r.code != 2 {
		t.Errorf("ftp:// server: exit %d", r.code)
	}
	golden.Assert(t, "testdata/server_not_a_url.golden", []byte(r.stderr))
}

// Authentication errors say where the token comes from: ALLOT_TOKEN or
// --token, never the HTTP header the server wants.
func TestAuthErrorsNameTheTokenSources(t *testing.T) {
	srv := setUp(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"no_token", map[string]string{"ALLOT_SERVER": srv.URL}, nil},
		{"env_token_refused", map[string]string{"ALLOT_SERVER": srv.URL, "ALLOT_TOKEN": "bm9ib2R5Om5vdGhpbmc="}, nil},
		{"flag_token_refused", map[string]string{"ALLOT_SERVER": srv.URL, "ALLOT_TOKEN": srv.AdminToken}, []string{"--token", "bm9ib2R5Om5vdGhpbmc="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWith(t, context.Background(), tc.env, append([]string{"tenants", "list"}, tc.args...)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if strings.Contains(r.stderr, "Authorization") {
				t.Errorf("stderr names the HTTP header:\n%s", r.stderr)
			}
			golden.Assert(t, filepath.Join("testdata", "auth_"+tc.name+".golden"), []byte(r.stderr))
		})
	}
}

// lineWriter cancels a context once it has seen n lines. It has no
// WriteString, so io.WriteString cannot pass it by.
type lineWriter struct {
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.n {
		w.cancel()
	}
	return n, err
}

// events --follow prints its rows as they come, and they line up with the
// header however long the tenant ids (names, 32-hex projects, UUIDs).
func TestFollowedEventsStayAligned(t *testing.T) {
	srv := testserver.Start(t)
	env := map[string]string{"ALLOT_SERVER": srv.URL, "ALLOT_TOKEN": srv.AdminToken}
	ids := []string{"a", "0123456789abcdef0123456789abcdef", "471a2a73-36db-4df9-bb63-82a45810e88a", "acme"}
	for _, id := range ids {
		if r := runWith(t, context.Background(), env, "tenants", "create", id); r.code != 0 {
			t.Fatal(r.stderr)
		}
		if r := runWith(t, context.Background(), env, "consumers", "put", id, "vm-"+id[:1], "--kind", "compute.instance",
			"--state", "running", "--attr", "memory_mb=64"); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := &lineWriter{n: 1 + 2*len(ids), cancel: cancel}
	var errOut bytes.Buffer
	code := cli.Run(ctx, []string{"events", "--follow"}, func(k string) string { return env[k] }, strings.NewReader(""), out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimRight(out.buf.String(), "\n"), "\n")
	if len(lines) < out.n {
		t.Fatalf("%d lines:\n%s", len(lines), out.buf.String())
	}
	header := []rune(lines[0])
	var starts []int // where each column after the first begins
	for i := 1; i < len(header); i++ {
		if header[i] != ' ' && header[i-1] == ' ' {
			starts = append(starts, i)
		}
	}
	if len(starts) != 5 {
		t.Fatalf("header %q has %d columns after the first, want 5", lines[0], len(starts))
	}
	for _, line := range lines[1:] {
		row := []rune(line)
		for _, s := range starts {
			if s >= len(row) || row[s] == ' ' || row[s-1] != ' ' || row[s-2] != ' ' {
				t.Errorf("a column does not begin at %d, under the header's:\n%s\n%s", s, lines[0], line)
				break
			}
		}
		if !utf8.ValidString(line) {
			t.Errorf("invalid UTF-8: %q", line)
		}
	}
}

// claims apply says what each operation did; a deleted consumer is marked
// deleted.
func TestClaimsApplyMarksDeletedConsumers(t *testing.T) {
	srv := setUp(t)
	batch := `
operations:
  - {op: put, tenant: globex, consumer: cache, kind: dcs.instance, attributes: {capacity_mb: 1024}}
  - {op: put, tenant: acme, consumer: web-1, kind: compute.instance, state: stopped, attributes: {memory_mb: 256}}
  - {op: delete, tenant: acme, consumer: web-2}
`
	for _, tc := range []struct{ name, flag string }{{"claims_apply_dry_run", "--dry-run"}, {"claims_apply", ""}} {
		args := []string{"claims", "apply", "-f", "-"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		r := allot(t, srv, batch, args...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, r.code, r.stderr)
		}
		golden.Assert(t, filepath.Join("testdata", tc.name+"_table.golden"), []byte(r.stdout))
	}
}
