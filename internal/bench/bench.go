// Package bench is `allot bench`: it drives allot (a running server, or one
// it starts in-process) with concurrent claims, batches and reads, measures
// throughput and latency, and then checks through the API that no quota was
// passed and that usage still equals what the consumers use. With a
// baseline it runs the same claims against a hand-written PostgreSQL schema.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Config is everything `allot bench` can be told.
type Config struct {
	Server, Token string // the server to drive, unless Embedded
	// Embedded starts allot in-process in a temporary directory (or, with a
	// postgres:// Database, a temporary schema) and removes it afterwards.
	Embedded bool
	// Database is the embedded server's store ("" for SQLite) and the
	// baseline's database.
	Database string
	// BaselineDatabase is where the baseline runs; "" for Database. With
	// it, allot on SQLite and the PostgreSQL baseline run in one invocation.
	BaselineDatabase string
	Workload         string
	Tenants          int
	Concurrency      int
	BatchSize        int // operations per request of the batch workload
	Duration         time.Duration
	Warmup           time.Duration
	Baseline         string // "" or "postgres"
	// Processes is how many embedded allot processes share the PostgreSQL
	// database; the load is spread over them in turn.
	Processes int
	// Ceiling also runs the healthz workload after the workload, through
	// the same client and connections, and reports the workload's rate as a
	// ratio to it: the figure that carries across machines and days.
	Ceiling bool
	// Tree runs the claim or hot workload twice in one invocation: flat,
	// then with the tenants in a tree (claim: each tenant two levels below
	// an organisation, every level with a quota set; hot: the hot quota on
	// a parent, the claims spread over its ten children), and reports the
	// tree's rate as a ratio to the flat one.
	Tree bool
}

// Workloads are the workloads Run knows:
//   - claim: each worker creates an instance consumer in a random tenant,
//     then deletes the one it created before (so it holds one at a time);
//   - hot: the same, all in one tenant whose quota is tight enough to refuse;
//   - batch: a worker alternates between a POST /claims of BatchSize puts in
//     one random tenant and one deleting them again;
//   - read: GET /v1/users/quotas (KraftCloud) with a random tenant's token;
//   - mixed: 80% reads, 20% claim steps;
//   - healthz: GET /healthz, the ceiling: what HTTP alone costs here.
var Workloads = []string{"claim", "hot", "batch", "read", "mixed", "healthz"}

// DefaultConfig returns the defaults of `allot bench`.
func DefaultConfig() Config {
	return Config{Workload: "claim", Tenants: 100, Concurrency: 64, BatchSize: 100, Duration: 10 * time.Second, Warmup: 2 * time.Second, Ceiling: true, Processes: 1}
}

// Validate checks every setting, naming the one at fault.
func (c Config) Validate() error {
	switch {
	case !slices.Contains(Workloads, c.Workload):
		return fmt.Errorf("workload must be one of %s, not %q", strings.Join(Workloads, ", "), c.Workload)
	case c.Tenants < 1 || c.Concurrency < 1:
		return errors.New("tenants and concurrency must be at least 1")
	case c.BatchSize < 1 || c.BatchSize > 1000:
		return errors.New("batch-size must be from 1 to 1000")
	case c.Duration <= 0 || c.Warmup < 0:
		return errors.New("duration must be positive and warmup not negative")
	case c.Database != "" && !isPostgres(c.Database):
		return errors.New("database must be empty (SQLite) or a postgres:// URL")
	case c.Processes < 1 || c.Processes > 16:
		return errors.New("processes must be from 1 to 16")
	case c.Processes > 1 && (!c.Embedded || !isPostgres(c.Database)):
		return errors.New("processes above 1 need --embedded with a postgres:// --database: SQLite has one process")
	case c.Baseline != "" && c.Baseline != "postgres":
		return fmt.Errorf("baseline must be postgres, not %q", c.Baseline)
	case c.BaselineDatabase != "" && !isPostgres(c.BaselineDatabase):
		return errors.New("baseline-database must be a postgres:// URL")
	case c.Baseline != "" && c.Database == "" && c.BaselineDatabase == "":
		return errors.New("baseline postgres needs --baseline-database (or --database) postgres://…")
	case c.Baseline != "" && c.Workload != "claim" && c.Workload != "hot":
		return errors.New("the baseline runs the claim and hot workloads only")
	case c.Tree && c.Workload != "claim" && c.Workload != "hot":
		return errors.New("--tree runs the claim and hot workloads only")
	case c.Tree && c.Baseline != "":
		return errors.New("--tree and --baseline do not run together")
	}
	return nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Summary is the outcome of a run; its JSON is the line `--json` prints.
type Summary struct {
	Workload    string  `json:"workload"`
	Store       string  `json:"store"` // sqlite or postgres (embedded), remote, or baseline-postgres
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	Admitted    int64   `json:"admitted"`
	Refused     int64   `json:"refused"`
	Errors      int64   `json:"errors"`
	// Overshoot is the amount by which usage passed hard quotas, plus the
	// amount by which usage differs from its consumers' footprints. Anything
	// but 0 is a broken invariant.
	Overshoot int64    `json:"overshoot"`
	Baseline  *Summary `json:"baseline,omitempty"`
	Ratio     float64  `json:"ratio,omitempty"` // ops/s of allot ÷ ops/s of the baseline
	// Tree is the same workload with the tenants in a tree (--tree), and
	// TreeRatio its ops/s ÷ this one's.
	Tree      *Summary `json:"tree,omitempty"`
	TreeRatio float64  `json:"tree_ratio,omitempty"`
	// CeilingOpsPerSec is GET /healthz's rate measured in the same run, and
	// CeilingRatio the workload's rate ÷ it (for batch: operations ÷
	// requests).
	CeilingOpsPerSec float64 `json:"ceiling_ops_per_sec,omitempty"`
	CeilingRatio     float64 `json:"ceiling_ratio,omitempty"`

	Problems   []string `json:"-"` // each broken invariant, for people
	FirstError string   `json:"-"` // the first failed operation, if any
}

// TotalOvershoot is the overshoot of allot and the baseline together:
// anything but 0 means an invariant broke.
func (s *Summary) TotalOvershoot() int64 {
	n := s.Overshoot
	for _, x := range []*Summary{s.Baseline, s.Tree} {
		if x != nil {
			n += x.Overshoot
		}
	}
	return n
}

// Run sets up tenants, runs the workload for the warmup and the duration,
// and checks the invariants; then, if asked, does the same against the
// baseline. Progress goes to log. A broken invariant is not an error: it is
// in the Summary (see TotalOvershoot).
func Run(ctx context.Context, cfg Config, log io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := newPlan(cfg)
	s, err := runAllot(ctx, cfg, p, log)
	if err != nil {
		return s, err
	}
	if cfg.Tree {
		tp := newTreePlan(cfg)
		if s.Tree, err = runAllot(ctx, cfg, tp, log); err != nil {
			return nil, fmt.Errorf("tree: %w", err)
		}
		s.Tree.Workload += " (tree)"
		if s.OpsPerSec > 0 {
			s.TreeRatio = round(s.Tree.OpsPerSec / s.OpsPerSec)
		}
		return s, nil
	}
	if cfg.Baseline == "" {
		return s, err
	}
	if s.Baseline, err = runBaseline(ctx, cfg, p, log); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if s.Baseline.OpsPerSec > 0 {
		s.Ratio = round(s.OpsPerSec / s.Baseline.OpsPerSec)
	}
	return s, nil
}

func runAllot(ctx context.Context, cfg Config, p *plan, log io.Writer) (*Summary, error) {
	bases, token, store := []string{strings.TrimRight(cfg.Server, "/")}, cfg.Token, "remote"
	if cfg.Embedded {
		srv, err := startEmbedded(ctx, cfg.Database, cfg.Processes, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			return nil, fmt.Errorf("starting the embedded server: %w", err)
		}
		defer srv.close()
		bases, token, store = srv.urls, srv.token, srv.store
		if len(bases) > 1 {
			store = fmt.Sprintf("%s, %d processes", store, len(bases))
		}
	}
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * cfg.Concurrency, MaxIdleConnsPerHost: 2 * cfg.Concurrency, IdleConnTimeout: 90 * time.Second,
	}}
	// Before the server shuts down: it waits for connections that never
	// carried a request (the transport dials spares) for 5 seconds.
	defer hc.CloseIdleConnections()
	a := newAllotTarget(bases, token, hc)
	fmt.Fprintf(log, "allot bench: %s on %s: setting up %d tenants\n", cfg.Workload, store, len(p.tenants))
	if !cfg.Embedded {
		// A real server keeps what the run made unless it is removed.
		defer func() {
			a.cleanup(ctx, p.tenants, log)
			for _, n := range slices.Backward(p.nodes) { // children before parents
				a.cleanup(ctx, []string{n.id}, log)
			}
		}()
	}
	if err := a.setup(ctx, p); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "allot bench: %d workers, %v warmup, %v measured\n", cfg.Concurrency, cfg.Warmup, cfg.Duration)
	st, elapsed := drive(ctx, cfg, p, a, a)
	s := st.summary(cfg, store, elapsed)
	var err error
	checked := slices.Clone(p.tenants)
	for _, n := range p.nodes {
		checked = append(checked, n.id)
	}
	if s.Overshoot, s.Problems, err = a.check(ctx, checked); err != nil {
		return nil, fmt.Errorf("checking the invariants: %w", err)
	}
	if cfg.Ceiling && cfg.Workload != "healthz" {
		fmt.Fprintf(log, "allot bench: the ceiling, GET /healthz, %v warmup, %v measured\n", cfg.Warmup, cfg.Duration)
		hz := cfg
		hz.Workload = "healthz"
		st, elapsed := drive(ctx, hz, p, a, a)
		ceiling := st.summary(hz, store, elapsed)
		s.CeilingOpsPerSec = ceiling.OpsPerSec
		if ceiling.OpsPerSec > 0 {
			s.CeilingRatio = round(s.OpsPerSec / ceiling.OpsPerSec)
		}
	}
	return s, nil
}

// instances is the resource every workload claims: a stopped instance uses
// one of it and nothing else.
const instances = "compute.instances"

// plan is the tenants of a run and their quotas.
type plan struct {
	tenants []string
	hard    []int64 // hard quota of instances, per tenant
	// nodes are the tenants above the claimed ones (--tree), created first,
	// parents before children, each with a hard quota of instances set;
	// parent names each claimed tenant's parent.
	nodes  []treeNode
	parent []string
	tokens []string // tenant tokens for the read workloads, filled in by setup
	reads  bool
}

// treeNode is a tenant above the claimed ones.
type treeNode struct {
	id, parent string
	hard       int64
}

// newTreePlan is newPlan's tenants in a tree. claim: two organisations
// over ten teams over the claimed tenants, so each claim has a 3-level
// ancestry and every level a quota set (high, so the claimed tenants'
// own quotas refuse as in the flat run). hot: the hot quota moves to a
// parent and the claims spread over its ten children.
func newTreePlan(cfg Config) *plan {
	if cfg.Workload == "hot" {
		flat := newPlan(cfg)
		root := flat.tenants[0]
		p := &plan{nodes: []treeNode{{id: root, hard: flat.hard[0]}}}
		for i := range 10 {
			p.tenants = append(p.tenants, fmt.Sprintf("%s-c%d", root, i))
			p.hard = append(p.hard, 1<<40)
			p.parent = append(p.parent, root)
		}
		p.tokens = make([]string, len(p.tenants))
		return p
	}
	p := newPlan(cfg)
	base := strings.TrimSuffix(p.tenants[0], "-0")
	orgs, teams := 2, 10
	for o := range orgs {
		p.nodes = append(p.nodes, treeNode{id: fmt.Sprintf("%s-org%d", base, o), hard: 1 << 42})
	}
	for tm := range teams {
		p.nodes = append(p.nodes, treeNode{id: fmt.Sprintf("%s-team%d", base, tm), parent: p.nodes[tm%orgs].id, hard: 1 << 41})
	}
	p.parent = make([]string, len(p.tenants))
	for i := range p.tenants {
		p.parent[i] = p.nodes[orgs+i%teams].id
	}
	return p
}

// newPlan names the run's tenants after a random run id, so that runs
// against one server never meet. Every tenth tenant may hold one instance
// only, so racing claims are refused there; the hot tenant's quota is half
// again the number of workers, and each worker holds one or, briefly, two.
func newPlan(cfg Config) *plan {
	run := make([]byte, 4)
	rand.Read(run)
	n := cfg.Tenants
	if cfg.Workload == "hot" {
		n = 1
	}
	p := &plan{tenants: make([]string, n), hard: make([]int64, n), tokens: make([]string, n),
		reads: cfg.Workload == "read" || cfg.Workload == "mixed"}
	for i := range n {
		p.tenants[i] = fmt.Sprintf("bench-%s-%d", hex.EncodeToString(run), i)
		switch {
		case cfg.Workload == "hot":
			p.hard[i] = int64(max(1, cfg.Concurrency+cfg.Concurrency/2))
		case i%10 == 0:
			p.hard[i] = 1
		default:
			p.hard[i] = 1 << 40
		}
	}
	return p
}
