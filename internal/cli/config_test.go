package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/cli"
	"github.com/allot-dev/allot/internal/golden"
)

// local runs a command that needs no server, with env as its environment.
func local(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeCheckLayersFileEnvAndFlags(t *testing.T) {
	conf := writeFile(t, "allot.yaml", "listen: 127.0.0.1:9000\nregion: from-file\ndata: /srv/allot\nlog-format: json\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"defaults", nil, nil, []string{"region   local", "listen   127.0.0.1:8080", "store    sqlite:allot-data/allot.db", "2 services, 10 resources, 4 kinds, 2 plans",
			"ledger   consumer events kept for 90d, audit events kept for ever; archive none; snapshots every 10000 events or 10m0s"}},
		{"retention", map[string]string{"ALLOT_AUDIT_RETENTION": "400d"}, []string{"--ledger-retention", "12h", "--ledger-archive", "/srv/archive"},
			[]string{"consumer events kept for 12h0m0s, audit events kept for 400d; archive /srv/archive"}},
		{"file", nil, []string{"--config", conf}, []string{"region   from-file", "listen   127.0.0.1:9000", "sqlite:/srv/allot/allot.db"}},
		{"file from env", map[string]string{"ALLOT_CONFIG": conf}, nil, []string{"region   from-file"}},
		{"env beats file", map[string]string{"ALLOT_REGION": "from-env"}, []string{"--config", conf}, []string{"region   from-env", "listen   127.0.0.1:9000"}},
		{"flag beats env", map[string]string{"ALLOT_REGION": "from-env"}, []string{"--config", conf, "--region", "from-flag"}, []string{"region   from-flag"}},
		{"postgres password hidden", nil, []string{"--database", "postgres://allot:s3cret@db:5432/allot"}, []string{"postgres://allot:xxxxx@db:5432/allot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := local(t, tc.env, append([]string{"serve", "--check"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "s3cret") {
				t.Errorf("output shows the database password:\n%s", r.stdout)
			}
		})
	}
}

func TestServeCheckNamesTheFieldAtFault(t *testing.T) {
	badCatalog := writeFile(t, "catalog.yaml", "services:\n  compute:\n    resources:\n      instances: {default: -1}\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown key", nil, []string{"--config", writeFile(t, "a.yaml", "listen: :8080\nlisten_addr: x\n")}, `a.yaml:2: unknown setting "listen_addr"`},
		{"wrong type in file", nil, []string{"--config", writeFile(t, "b.yaml", "metrics-per-tenant: maybe\n")}, "b.yaml: metrics-per-tenant:"},
		{"nested value", nil, []string{"--config", writeFile(t, "c.yaml", "region: [a, b]\n")}, "c.yaml:1: region must be a single value"},
		{"not yaml", nil, []string{"--config", writeFile(t, "d.yaml", "region: [\n")}, "d.yaml"},
		{"missing file", nil, []string{"--config", "/nonexistent/allot.yaml"}, "reading the config file"},
		{"bad env", map[string]string{"ALLOT_QUEUE_SIZE": "lots"}, nil, `ALLOT_QUEUE_SIZE="lots"`},
		{"bad region", nil, []string{"--region", "eu west"}, "region:"},
		{"bad listen", nil, []string{"--listen", "8080"}, "listen:"},
		{"bad log format", nil, []string{"--log-format", "xml"}, "log-format:"},
		{"bad database", nil, []string{"--database", "mysql://x"}, "database:"},
		{"bad catalog", nil, []string{"--catalog", badCatalog}, "catalog: " + badCatalog},
		{"missing key file", nil, []string{"--secret-key-file", "/nonexistent/key"}, "secret-key-file:"},
		{"bad retention", nil, []string{"--ledger-retention", "3 months"}, "ledger-retention"},
		{"negative retention", map[string]string{"ALLOT_AUDIT_RETENTION": "-1d"}, nil, "ALLOT_AUDIT_RETENTION"},
		{"tiny snapshot interval", nil, []string{"--snapshot-interval", "1ms"}, "snapshot-interval"},
		{"no tree", nil, []string{"--tree-depth", "0"}, "tree-depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := local(t, tc.env, append([]string{"serve", "--check"}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want it to name %q", r.code, r.stderr, tc.want)
			}
			if strings.Count(r.stderr, "allot: ") != 1 {
				t.Errorf("stderr should carry one allot: prefix: %q", r.stderr)
			}
		})
	}
}

func TestCatalogShow(t *testing.T) {
	r := local(t, nil, "catalog", "show")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden.Assert(t, "testdata/catalog_show_table.golden", []byte(r.stdout))

	r = local(t, nil, "catalog", "show", "-o", "yaml")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# The catalog allot starts with") {
		t.Fatalf("yaml: exit %d, %.80q", r.code, r.stdout)
	}
	r = local(t, nil, "catalog", "show", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"live_memory_mb"`) {
		t.Fatalf("json: exit %d, %.200s", r.code, r.stdout)
	}

	custom := writeFile(t, "catalog.yaml", "services:\n  storage:\n    resources:\n      buckets: {default: 3, requestable: [1, 9], policy: review}\n")
	r = local(t, map[string]string{"ALLOT_CATALOG": custom}, "catalog", "show")
	if r.code != 0 || !strings.Contains(r.stdout, "storage.buckets") || strings.Contains(r.stdout, "compute") {
		t.Fatalf("custom catalog: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
