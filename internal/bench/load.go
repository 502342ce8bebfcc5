package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/allot-dev/allot/client"
)

// outcome is how an operation ended.
type outcome int

const (
	admitted outcome = iota
	refused          // a quota said no: 409 quota_exceeded, or no row updated
	failed
)

// claimer is what the claim workloads drive: allot over HTTP, or the
// hand-made PostgreSQL baseline. A release is never refused.
type claimer interface {
	claim(ctx context.Context, tenant, id string) (outcome, error)
	release(ctx context.Context, tenant, id string) (outcome, error)
}

// stats are one worker's figures; workers merge theirs at the end.
type stats struct {
	latency                        Histogram // one value per request
	ops, admitted, refused, errors int64
	firstErr                       error
}

func (s *stats) merge(o *stats) {
	s.latency.Merge(&o.latency)
	s.ops += o.ops
	s.admitted += o.admitted
	s.refused += o.refused
	s.errors += o.errors
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
}

func (s *stats) summary(cfg Config, store string, elapsed time.Duration) *Summary {
	ms := func(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }
	sum := &Summary{
		Workload: cfg.Workload, Store: store, Concurrency: cfg.Concurrency,
		DurationS: round(elapsed.Seconds()), OpsPerSec: round(float64(s.ops) / elapsed.Seconds()),
		P50ms: ms(s.latency.Quantile(0.50)), P90ms: ms(s.latency.Quantile(0.90)),
		P99ms: ms(s.latency.Quantile(0.99)), MaxMs: ms(s.latency.Max()),
		Admitted: s.admitted, Refused: s.refused, Errors: s.errors,
	}
	if s.firstErr != nil {
		sum.FirstError = s.firstErr.Error()
	}
	return sum
}

// round keeps three decimals: enough for milliseconds and ratios.
func round(x float64) float64 { return math.Round(x*1000) / 1000 }

// worker runs one workload's steps in a loop. It holds what it claimed last
// (one consumer, or one batch's) and releases it in its next step, so the
// tenants always have claims in them to race against.
type worker struct {
	n     int
	cfg   Config
	plan  *plan
	c     claimer
	allot *allotTarget // batch and reads; nil for the baseline
	rng   *rand.Rand
	seq   int
	from  time.Time // operations that start earlier are the warmup's

	heldTenant string
	held       []string

	stats
}

// drive runs cfg.Concurrency workers through the warmup and the measured
// duration and returns their merged figures and the measured time, which
// runs until the last operation started in it has ended.
func drive(ctx context.Context, cfg Config, p *plan, c claimer, a *allotTarget) (*stats, time.Duration) {
	from := time.Now().Add(cfg.Warmup)
	end := from.Add(cfg.Duration)
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{n: i, cfg: cfg, plan: p, c: c, allot: a, from: from, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
		workers[i] = w
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				w.step(ctx)
			}
		})
	}
	wg.Wait()
	total := &stats{}
	for _, w := range workers {
		total.merge(&w.stats)
	}
	return total, max(time.Since(from), time.Millisecond)
}

func (w *worker) step(ctx context.Context) {
	switch w.cfg.Workload {
	case "claim", "hot":
		w.claimStep(ctx)
	case "batch":
		w.batchStep(ctx)
	case "read":
		w.readStep(ctx)
	case "mixed":
		if w.rng.IntN(5) == 0 {
			w.claimStep(ctx)
		} else {
			w.readStep(ctx)
		}
	case "healthz":
		start := time.Now()
		o, err := w.allot.send(ctx, "GET", "/healthz", "", nil)
		w.record(start, o, 1, err)
	}
}

// claimStep claims a new consumer, then releases the one claimed before:
// two operations.
func (w *worker) claimStep(ctx context.Context) {
	tenant, id := w.plan.tenants[w.rng.IntN(len(w.plan.tenants))], w.nextID()
	start := time.Now()
	o, err := w.c.claim(ctx, tenant, id)
	w.record(start, o, 1, err)
	if len(w.held) > 0 {
		start := time.Now()
		ro, err := w.c.release(ctx, w.heldTenant, w.held[0])
		w.record(start, ro, 1, err)
		w.held = w.held[:0]
	}
	if o == admitted {
		w.heldTenant, w.held = tenant, append(w.held, id)
	}
}

// batchStep claims cfg.BatchSize consumers in one tenant in one request,
// or releases the previous batch's in one request. Each operation of the
// batch counts; the latency is the request's.
func (w *worker) batchStep(ctx context.Context) {
	ops := make([]client.Operation, 0, w.cfg.BatchSize)
	if len(w.held) > 0 {
		for _, id := range w.held {
			ops = append(ops, client.Operation{Op: "delete", Tenant: w.heldTenant, Consumer: id})
		}
		w.held = w.held[:0]
	} else {
		tenant := w.plan.tenants[w.rng.IntN(len(w.plan.tenants))]
		for range w.cfg.BatchSize {
			ops = append(ops, client.Operation{Op: "put", Tenant: tenant, Consumer: w.nextID(),
				Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 16}})
		}
		w.heldTenant = tenant
	}
	start := time.Now()
	o, err := w.allot.batch(ctx, ops)
	w.record(start, o, int64(len(ops)), err)
	if o == admitted && ops[0].Op == "put" {
		for _, op := range ops {
			w.held = append(w.held, op.Consumer)
		}
	}
}

func (w *worker) readStep(ctx context.Context) {
	token := w.plan.tokens[w.rng.IntN(len(w.plan.tokens))]
	start := time.Now()
	o, err := w.allot.read(ctx, token)
	w.record(start, o, 1, err)
}

func (w *worker) nextID() string {
	w.seq++
	return "w" + strconv.Itoa(w.n) + "-" + strconv.Itoa(w.seq)
}

// record counts n operations that one request, begun at start, decided.
func (w *worker) record(start time.Time, o outcome, n int64, err error) {
	if start.Before(w.from) {
		return
	}
	w.latency.Record(time.Since(start))
	w.ops += n
	switch o {
	case admitted:
		w.admitted += n
	case refused:
		w.refused += n
	default:
		w.errors += n
		if w.firstErr == nil {
			w.firstErr = err
		}
	}
}
