package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/bench"
)

func benchCommand(r *remote, _ Env) *cobra.Command {
	cfg := bench.DefaultConfig()
	var asJSON bool
	c := &cobra.Command{
		Use:   "bench",
		Short: "Put load on allot, measure it, and check that no quota was passed",
		Long: `Put load on allot (the --server, or with --embedded one started here in a
temporary directory), report throughput and latency, then check through the
API that no tenant's usage passed its hard quota and that usage equals the sum
of its consumers' footprints. It exits 1 if either broke.

Workloads:
  claim  create an instance consumer in one of --tenants tenants, then delete
         the one created before; every PUT and every DELETE is an operation
  hot    the same, all in one tenant whose quota refuses some claims
  batch  POST /api/v1/claims of --batch-size puts in one tenant, then one
         deleting them; each operation of a batch counts, latency is per request
  read   GET /v1/users/quotas (KraftCloud) with a tenant's token
  mixed  80% reads, 20% claims

Every tenth tenant may hold one instance only, so racing claims are refused
there (409), counted as refused, not as errors.

--baseline postgres runs the same claim or hot workload, after allot's, on a
hand-written PostgreSQL schema in --database (one transaction per claim with
a conditional UPDATE), and adds its figures and allot's ratio to them.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg.Server, cfg.Token = r.server, r.token
			if cfg.Token == "" {
				cfg.Token = r.envToken
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err.Error()}
			}
			s, err := bench.Run(c.Context(), cfg, c.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON || r.output == "json" {
				line, err := json.Marshal(s)
				if err != nil {
					return err
				}
				fmt.Fprintf(r.stdout, "%s\n", jsonSafe(line))
				benchNotes(c.ErrOrStderr(), s)
			} else {
				benchTable(r.stdout, s)
				benchNotes(r.stdout, s)
			}
			if n := s.TotalOvershoot(); n != 0 {
				return fmt.Errorf("invariants broken: overshoot %d", n)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&cfg.Embedded, "embedded", false, "start a server here, in a temporary directory, instead of using --server")
	f.StringVar(&cfg.Database, "database", "", "with --embedded: empty for SQLite, or a postgres:// URL (a temporary schema is used); the baseline's database")
	f.StringVar(&cfg.BaselineDatabase, "baseline-database", "", "the baseline's postgres:// URL, when allot runs on another store (e.g. embedded SQLite)")
	f.StringVar(&cfg.Workload, "workload", cfg.Workload, strings.Join(bench.Workloads, ", "))
	f.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "tenants to spread the load over")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent workers, each with one request in flight")
	f.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "operations per request of the batch workload (at most 1000)")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to measure")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before measuring, not counted")
	f.IntVar(&cfg.Processes, "processes", cfg.Processes, "with --embedded and a postgres:// --database: allot processes sharing it, the load spread over them")
	f.StringVar(&cfg.Baseline, "baseline", "", "also run the workload on a hand-written baseline: postgres")
	f.BoolVar(&cfg.Ceiling, "ceiling", cfg.Ceiling, "also measure GET /healthz, the ceiling, and report the workload as a ratio to it")
	f.BoolVar(&cfg.Tree, "tree", false, "claim and hot: run the workload flat, then with the tenants in a tree (claim: 3-level ancestry; hot: the hot quota on a parent, claims spread over its children), and report the ratio")
	f.BoolVar(&asJSON, "json", false, "print the figures as one JSON object, the last line of the output (as -o json does)")
	return c
}

func benchTable(w io.Writer, s *bench.Summary) {
	t := newTable("WORKLOAD", "STORE", "WORKERS", "SECONDS", "OPS/S", "P50", "P90", "P99", "MAX", "ADMITTED", "REFUSED", "ERRORS", "OVERSHOOT")
	for _, x := range []*bench.Summary{s, s.Baseline, s.Tree} {
		if x == nil {
			continue
		}
		ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "ms" }
		n := func(v int64) string { return strconv.FormatInt(v, 10) }
		t.row(x.Workload, x.Store, strconv.Itoa(x.Concurrency), strconv.FormatFloat(x.DurationS, 'f', 1, 64),
			strconv.FormatFloat(x.OpsPerSec, 'f', 0, 64), ms(x.P50ms), ms(x.P90ms), ms(x.P99ms), ms(x.MaxMs),
			n(x.Admitted), n(x.Refused), n(x.Errors), n(x.Overshoot))
	}
	t.print(w)
	if s.CeilingOpsPerSec > 0 {
		fmt.Fprintf(w, "\nGET /healthz, the ceiling, in the same run: %.0f/s; %s is %.2f× the ceiling\n", s.CeilingOpsPerSec, s.Workload, s.CeilingRatio)
	}
	if s.Baseline != nil {
		fmt.Fprintf(w, "\nallot does %.2f× the baseline's operations per second\n", s.Ratio)
	}
	if s.Tree != nil {
		fmt.Fprintf(w, "\nin a tree, %s does %.2f× the flat run's operations per second\n", s.Workload, s.TreeRatio)
	}
}

// benchNotes says what failed first and which invariants broke.
func benchNotes(w io.Writer, s *bench.Summary) {
	const shown = 10
	for _, x := range []*bench.Summary{s, s.Baseline, s.Tree} {
		if x == nil {
			continue
		}
		if x.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", x.Store, printable(x.FirstError))
		}
		for i, p := range x.Problems {
			if i == shown {
				fmt.Fprintf(w, "! … and %d more\n", len(x.Problems)-shown)
				break
			}
			fmt.Fprintf(w, "! %s\n", printable(p))
		}
	}
}
