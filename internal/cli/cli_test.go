package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/cli"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/testserver"
)

type result struct {
	code           int
	stdout, stderr string
}

// allot runs the CLI as a user would, against srv.
func allot(t *testing.T, srv *testserver.Server, stdin string, args ...string) result {
	t.Helper()
	env := map[string]string{"ALLOT_SERVER": srv.URL, "ALLOT_TOKEN": srv.AdminToken}
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func setUp(t *testing.T) *testserver.Server {
	t.Helper()
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	srv := testserver.Start(t, testserver.Options{Now: func() time.Time { return at }})
	for _, args := range [][]string{
		{"tenants", "create", "acme", "--name", "Acme Corp", "--plan", "free"},
		{"tenants", "create", "globex"},
		{"consumers", "put", "acme", "web-1", "--kind", "compute.instance", "--state", "running", "--attr", "memory_mb=256"},
		{"consumers", "put", "acme", "web-2", "--kind", "compute.instance", "--state", "stopped", "--attr", "memory_mb=128"},
		{"consumers", "put", "globex", "data", "--kind", "compute.volume", "--attr", "size_mb=100"},
		{"quotas", "set", "globex", "compute.volumes", "0"},
	} {
		if r := allot(t, srv, "", args...); r.code != 0 {
			t.Fatalf("allot %v: %d %s", args, r.code, r.stderr)
		}
	}
	return srv
}

func TestReadCommandsGolden(t *testing.T) {
	srv := setUp(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"quotas_get_table", []string{"quotas", "get", "acme"}},
		{"quotas_get_json", []string{"quotas", "get", "acme", "-o", "json"}},
		{"quotas_get_yaml", []string{"quotas", "get", "globex", "-o", "yaml"}},
		{"top_table", []string{"top"}},
		{"top_json", []string{"top", "-o", "json"}},
		{"tenants_list_table", []string{"tenants", "list"}},
		{"tenants_list_json", []string{"tenants", "list", "-o", "json"}},
		{"consumers_list_table", []string{"consumers", "list", "acme", "--all"}},
		{"consumers_list_json", []string{"consumers", "list", "acme", "--kind", "compute.instance", "--state", "running", "-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := allot(t, srv, "", tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			golden.Assert(t, filepath.Join("testdata", tc.name+".golden"), []byte(r.stdout))
		})
	}
}

func TestRefusalExitsOneWithTheCode(t *testing.T) {
	srv := setUp(t)
	r := allot(t, srv, "", "consumers", "put", "acme", "web-3", "--kind", "compute.instance", "--state", "running", "--attr", "memory_mb=384")
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	golden.Assert(t, "testdata/refusal_stderr.golden", []byte(r.stderr))
	r = allot(t, srv, "", "consumers", "put", "acme", "web-3", "--kind", "compute.instance", "--state", "stopped", "--attr", "memory_mb=4096")
	if r.code != 1 || !strings.Contains(r.stderr, "limit_violation") || !strings.Contains(r.stderr, "compute.instance.memory_mb = 4096, allowed 16 to 512") {
		t.Fatalf("limit refusal: %d %s", r.code, r.stderr)
	}
	r = allot(t, srv, "", "tenants", "get", "nobody")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "allot: not_found: ") {
		t.Fatalf("not found: %d %s", r.code, r.stderr)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	srv := setUp(t)
	for _, args := range [][]string{
		{"quotas", "get"},
		{"quotas", "set", "acme", "compute.volumes", "many"},
		{"quotas", "set", "acme", "compute.volumes", "3", "--min", "1"},
		{"consumers", "put", "acme", "x", "--kind", "compute.volume", "--attr", "size_mb"},
		{"consumers", "put", "acme", "x"},
		{"tenants", "list", "--colour"},
		{"tenants", "list", "-o", "xml"},
		{"limits", "set", "acme", "compute.instance", "memory_mb", "1"},
	} {
		r := allot(t, srv, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "allot: ") {
			t.Errorf("allot %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if len(args) < 3 && !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("allot %v printed no usage: %s", args, r.stderr)
		}
	}
}

func TestConnectionFailureNamesTheServer(t *testing.T) {
	var out, errOut bytes.Buffer
	env := map[string]string{"ALLOT_SERVER": "http://127.0.0.1:1", "ALLOT_TOKEN": "x"}
	code := cli.Run(context.Background(), []string{"tenants", "list"}, func(k string) string { return env[k] }, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "cannot reach http://127.0.0.1:1") || strings.Count(errOut.String(), "allot: ") != 1 {
		t.Fatalf("exit %d: %q", code, errOut.String())
	}
}

func TestWritesAndClaimsFile(t *testing.T) {
	srv := setUp(t)
	batch := `
operations:
  - {op: put, tenant: globex, consumer: cache, kind: dcs.instance, attributes: {capacity_mb: 1024}}
  - {op: delete, tenant: acme, consumer: web-2}
`
	r := allot(t, srv, batch, "claims", "apply", "-f", "-", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "2 operations would be applied (dry run)") {
		t.Fatalf("dry run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	path := filepath.Join(t.TempDir(), "batch.yaml")
	os.WriteFile(path, []byte(batch), 0o644)
	if r = allot(t, srv, "", "claims", "apply", "-f", path); r.code != 0 {
		t.Fatalf("apply: %d %s", r.code, r.stderr)
	}
	if r = allot(t, srv, "", "consumers", "get", "acme", "web-2"); r.code != 1 {
		t.Fatalf("web-2 still there: %s", r.stdout)
	}
	r = allot(t, srv, "", "tokens", "create", "--role", "tenant", "--tenant", "acme", "--name", "acme-ro")
	if r.code != 0 || !strings.Contains(r.stdout, "shown only this once") {
		t.Fatalf("token: %d %s %s", r.code, r.stdout, r.stderr)
	}
	secret := strings.TrimSpace(r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:])
	var out, errOut bytes.Buffer
	env := map[string]string{"ALLOT_SERVER": srv.URL}
	code := cli.Run(context.Background(), []string{"quotas", "get", "acme", "--token", secret}, func(k string) string { return env[k] }, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("the new tenant token does not read its quotas: %s", errOut.String())
	}
	if r = allot(t, srv, "", "tokens", "revoke", "acme-ro"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r = allot(t, srv, "", "credentials", "create", "globex"); r.code != 0 || !strings.Contains(r.stdout, "secret key: ") {
		t.Fatalf("credentials: %s %s", r.stdout, r.stderr)
	}
	if r = allot(t, srv, "", "limits", "set", "acme", "compute.instance", "memory_mb", "32", "256"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r = allot(t, srv, "", "events", "--tenant", "acme", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"limit.set"`) {
		t.Fatalf("events: %s %s", r.stdout, r.stderr)
	}
	if r = allot(t, srv, "", "consumers", "delete", "acme", "web-1", "--if-match", "9"); r.code != 1 || !strings.Contains(r.stderr, "generation_mismatch") {
		t.Fatalf("if-match: %d %s", r.code, r.stderr)
	}
	if r = allot(t, srv, "", "consumers", "put", "acme", "tmp", "--kind", "compute.volume", "--attr", "size_mb=4", "--ttl", "30s", "-o", "json"); r.code != 0 ||
		!strings.Contains(r.stdout, `"expires_at": "2026-11-22T09:30:30Z"`) {
		t.Fatalf("ttl: %s %s", r.stdout, r.stderr)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	srv := setUp(t)
	r := allot(t, srv, "", "--help")
	for _, cmd := range []string{"serve", "tenants", "quotas", "limits", "consumers", "claims", "tokens", "credentials", "events", "top", "completion"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("help lacks %s", cmd)
		}
	}
	if strings.Contains(r.stdout, srv.AdminToken) {
		t.Error("help shows the token")
	}
	if r = allot(t, srv, "", "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "bash completion") {
		t.Fatalf("completion: %d", r.code)
	}
}

// TestEventsFromAnArchive reads an archive back with the command, with
// the API's filters, and refuses a changed file.
func TestEventsFromAnArchive(t *testing.T) {
	srv := setUp(t)
	dir := filepath.Join(t.TempDir(), "archive")
	a, err := ledger.OpenArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := srv.Store.LastSeq(t.Context())
	if _, err := a.Append(t.Context(), srv.Store, head, 1000); err != nil {
		t.Fatal(err)
	}
	r := local(t, nil, "events", "--archive", dir, "--tenant", "acme", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], `"tenant.create"`) || strings.Contains(r.stdout, `"globex"`) {
		t.Fatalf("acme's archived events:\n%s", r.stdout)
	}
	r = local(t, nil, "events", "--archive", dir, "--from", "2026-11-22T09:31:00Z")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 { // the header alone: every event is at 09:30
		t.Fatalf("events after the last: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = local(t, nil, "events", "--archive", dir, "--from", "yesterday"); r.code == 0 || !strings.Contains(r.stderr, "--from") {
		t.Fatalf("a bad --from: exit %d %s", r.code, r.stderr)
	}
	if r = allot(t, srv, "", "events", "--from", "2026-11-22T09:31:00Z"); r.code == 0 || !strings.Contains(r.stderr, "--archive") {
		t.Fatalf("--from without --archive: exit %d %s", r.code, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.ndjson.gz"))
	os.WriteFile(files[0], []byte("not what was archived"), 0o600)
	if r = local(t, nil, "events", "--archive", dir); r.code == 0 || !strings.Contains(r.stderr, "checksum") {
		t.Fatalf("a changed archive: exit %d %s", r.code, r.stderr)
	}
}

// TestTenantsTree: an operator sees an organisation's projects and how
// its allowance is split.
func TestTenantsTree(t *testing.T) {
	srv := setUp(t)
	for _, args := range [][]string{
		{"tenants", "create", "org", "--name", "Org"},
		{"quotas", "set", "org", "compute.live_memory_mb", "1024"},
		{"tenants", "create", "org-web", "--parent", "org"},
		{"tenants", "create", "org-db", "--parent", "org"},
		{"tenants", "update", "acme", "--parent", "org-web"},
		{"consumers", "put", "org-db", "pg", "--kind", "compute.instance", "--state", "running", "--attr", "memory_mb=512"},
	} {
		if r := allot(t, srv, "", args...); r.code != 0 {
			t.Fatalf("allot %v: %d %s", args, r.code, r.stderr)
		}
	}
	r := allot(t, srv, "", "tenants", "tree", "org", "--resource", "compute.live_memory_mb")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden.Assert(t, filepath.Join("testdata", "tenants_tree_table.golden"), []byte(r.stdout))
	// A cycle is refused with its code.
	r = allot(t, srv, "", "tenants", "update", "org", "--parent", "acme")
	if r.code != 1 || !strings.Contains(r.stderr, "parent_cycle") {
		t.Fatalf("cycle: %d %s", r.code, r.stderr)
	}
}
