package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/bench"
	"github.com/allot-dev/allot/internal/bench/benchtest"
	"github.com/allot-dev/allot/internal/pgtest"
)

// runBench runs `allot bench args…` against server and returns the exit
// status Run would give.
func runBench(t *testing.T, server string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	root := &cobra.Command{Use: "allot", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(benchCommand(&remote{server: server, token: "token", output: "table", stdout: &out}, nil))
	root.SetArgs(append([]string{"bench"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	code := 0
	if _, ok := errors.AsType[usageError](err); ok {
		code = 2
	} else if err != nil {
		code = 1
		errOut.WriteString(err.Error() + "\n")
	}
	return result{code, out.String(), errOut.String()}
}

type result struct {
	code           int
	stdout, stderr string
}

// lastJSON decodes the last line of stdout, holding it to the documented keys.
func lastJSON(t *testing.T, stdout string) bench.Summary {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	last := []byte(lines[len(lines)-1])
	var keys map[string]any
	if err := json.Unmarshal(last, &keys); err != nil {
		t.Fatalf("the last line is not JSON: %v\n%s", err, stdout)
	}
	for _, k := range []string{"workload", "store", "concurrency", "duration_s", "ops_per_sec", "p50_ms", "p90_ms", "p99_ms", "max_ms", "admitted", "refused", "errors", "overshoot"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("the JSON has no %q: %s", k, last)
		}
	}
	var s bench.Summary
	json.Unmarshal(last, &s)
	return s
}

func saneFigures(t *testing.T, s *bench.Summary) {
	t.Helper()
	if s.OpsPerSec <= 0 || s.Admitted == 0 || s.Errors != 0 || s.Overshoot != 0 ||
		!(s.P50ms <= s.P90ms && s.P90ms <= s.P99ms && s.P99ms <= s.MaxMs) || s.P50ms <= 0 {
		t.Errorf("%s on %s: implausible figures %+v", s.Workload, s.Store, *s)
	}
}

func TestBenchEveryWorkloadOnEmbeddedSQLite(t *testing.T) {
	for _, w := range bench.Workloads {
		t.Run(w, func(t *testing.T) {
			t.Parallel()
			r := runBench(t, "", "--embedded", "--workload", w, "--duration", "1s", "--warmup", "0",
				"--concurrency", "4", "--tenants", "20", "--batch-size", "50", "--json")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			s := lastJSON(t, r.stdout)
			if s.Workload != w || s.Store != "sqlite" || s.Concurrency != 4 || s.Baseline != nil {
				t.Errorf("labels: %+v", s)
			}
			saneFigures(t, &s)
		})
	}
}

func TestBenchBaselineOnPostgres(t *testing.T) {
	r := runBench(t, "", "--embedded", "--database", pgtest.Schema(t), "--baseline", "postgres",
		"--workload", "claim", "--duration", "1s", "--warmup", "0", "--concurrency", "4", "--tenants", "20", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s := lastJSON(t, r.stdout)
	if s.Store != "postgres" || s.Baseline == nil || s.Baseline.Store != "baseline-postgres" || s.Ratio <= 0 {
		t.Fatalf("want allot on postgres, a baseline and a ratio: %s", r.stdout)
	}
	saneFigures(t, &s)
	saneFigures(t, s.Baseline)
}

// A server that lets usage pass its quotas, and lose track of it, must
// fail the run: exit 1, with the overshoot and what broke.
func TestBenchExitsOneOnOvershoot(t *testing.T) {
	fake := benchtest.Start(t)
	args := []string{"--workload", "claim", "--duration", "200ms", "--warmup", "0", "--concurrency", "2", "--tenants", "3"}

	r := runBench(t, fake.URL, append(args, "--json")...)
	if s := lastJSON(t, r.stdout); r.code != 1 || s.Overshoot != 3*benchtest.OvershootPerTenant {
		t.Errorf("exit %d, overshoot %d; want 1 and %d\n%s%s", r.code, s.Overshoot, 3*benchtest.OvershootPerTenant, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "invariants broken: overshoot 9") || !strings.Contains(r.stderr, "above its hard quota 1") {
		t.Errorf("stderr does not say what broke:\n%s", r.stderr)
	}

	r = runBench(t, fake.URL, args...)
	if r.code != 1 || !strings.Contains(r.stdout, "OVERSHOOT") || strings.Count(r.stdout, "\n! ") != 6 {
		t.Errorf("exit %d; want 1 and a table followed by the 6 broken invariants:\n%s", r.code, r.stdout)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--workload", "write"},
		{"--baseline", "postgres"},
		{"--embedded", "--database", "mysql://x"},
		{"extra"},
	} {
		if r := runBench(t, "", args...); r.code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if !slices.Contains(bench.Workloads, "mixed") {
		t.Error("mixed is not a workload")
	}
}
