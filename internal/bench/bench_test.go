package bench

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/bench/benchtest"
	"github.com/allot-dev/allot/internal/pgtest"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // in the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"unknown workload", func(c *Config) { c.Workload = "write" }, "workload"},
		{"no workers", func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{"batch too large", func(c *Config) { c.BatchSize = 1001 }, "batch-size"},
		{"sqlite path", func(c *Config) { c.Database = "sqlite:/tmp/x.db" }, "database"},
		{"baseline without database", func(c *Config) { c.Baseline = "postgres" }, "--database"},
		{"baseline of reads", func(c *Config) {
			c.Baseline, c.Database, c.Workload = "postgres", "postgres://localhost/x", "read"
		}, "claim and hot"},
		{"unknown baseline", func(c *Config) { c.Baseline, c.Database = "mysql", "postgres://localhost/x" }, "baseline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// The checker must catch a server whose usage passed a hard quota and does
// not add up to its consumers, following the consumers' pages.
func TestCheckFindsOvershoot(t *testing.T) {
	fake := benchtest.Start(t)
	a := newAllotTarget([]string{fake.URL}, "token", http.DefaultClient)
	overshoot, problems, err := a.check(context.Background(), []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if overshoot != 2*benchtest.OvershootPerTenant || len(problems) != 4 {
		t.Fatalf("overshoot %d, problems %q; want %d and 4 problems", overshoot, problems, 2*benchtest.OvershootPerTenant)
	}
	for _, want := range []string{"a: compute.instances used 3, above its hard quota 1", "b: compute.instances used 3, but its 2 consumers' footprints add up to 2"} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("no problem says %q in %q", want, problems)
		}
	}
}

// The hot workload on both allot and the baseline: racing claims on one
// tenant are refused, never admitted past the quota.
func TestHotWithBaselineOnPostgres(t *testing.T) {
	dsn := pgtest.Schema(t)
	cfg := DefaultConfig()
	cfg.Embedded, cfg.Database, cfg.Baseline = true, dsn, "postgres"
	cfg.Workload, cfg.Concurrency, cfg.Duration, cfg.Warmup = "hot", 8, time.Second, 0
	s, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Summary{s, s.Baseline} {
		t.Logf("%+v", *x)
		if x.Admitted == 0 || x.Refused == 0 || x.Errors != 0 || x.Overshoot != 0 {
			t.Errorf("%s: admitted %d, refused %d, errors %d (%s), overshoot %d; want some admitted and refused, no errors, no overshoot",
				x.Store, x.Admitted, x.Refused, x.Errors, x.FirstError, x.Overshoot)
		}
	}
	if s.Store != "postgres" || s.Baseline.Store != "baseline-postgres" || s.Ratio <= 0 {
		t.Errorf("stores %s and %s, ratio %v", s.Store, s.Baseline.Store, s.Ratio)
	}
}
