// Package storetest is the one behaviour suite every quota.Store must pass.
// It drives a store through a real quota.Engine, as allot does, and checks
// what the store then reads back.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// Opener opens a new, empty database for one test and returns a function
// that opens a Store on it; each call opens it again (another connection
// pool, as another process would), so durability and several processes can
// be tested. The suite closes what it opens.
type Opener func(t *testing.T) (open func() quota.Store)

// Config says what a store supports.
type Config struct {
	// OneProcess: the store refuses a second process on its database (the
	// SQLite store), so the tests of several processes are skipped.
	OneProcess bool
}

// Run runs the suite.
func Run(t *testing.T, opener Opener, cfgs ...Config) {
	var cfg Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Tenants", testTenants},
		{"EffectiveQuotasAndLimits", testEffective},
		{"ConsumerLifecycle", testConsumerLifecycle},
		{"Refusals", testRefusals},
		{"ShrinkWhileOverQuota", testShrinkWhileOverQuota},
		{"DryRun", testDryRun},
		{"IfMatch", testIfMatch},
		{"BatchAllOrNothing", testBatch},
		{"Reservations", testReservations},
		{"ExpiryDecidedByTime", testExpiryByTime},
		{"TenantIncarnations", testIncarnations},
		{"Tokens", testTokens},
		{"EventsInTheSameTransaction", testEvents},
		{"Overflow", testOverflow},
		{"Durability", testDurability},
		{"RaceForTheLastSlots", testRace},
		{"TwoProcesses", testTwoProcesses},
		{"ListConsumers", testListConsumers},
		{"RequestPolicy", testRequestPolicy},
		{"Thresholds", testThresholds},
		{"Reconcile", testReconcile},
		{"LedgerReplay", testLedgerReplay},
		{"Retention", testRetention},
		{"PruneKeepsOwedEvents", testPruneKeepsOwedEvents},
		{"Outbox", testOutbox},
		{"WebhookHealth", testWebhookHealth},
		{"PlanChange", testPlanChange},
		{"Pin", testPin},
		{"PipelineFailure", testPipelineFailure},
		{"ViewsAfterCommit", testViewsAfterCommit},
		{"SmallCache", testSmallCache},
		{"ViewsOfOtherProcesses", testViewsOfOtherProcesses},
		{"AlternatingProcesses", testAlternatingProcesses},
		{"TreeRace", testTreeRace},
		{"TreeTwoProcesses", testTreeTwoProcesses},
		{"TreeRefusalNamesTheLevel", testTreeRefusal},
		{"TreeRules", testTreeRules},
		{"TreeMoveUnderFullParent", testTreeMoveUnderFullParent},
		{"TreeReplay", testTreeReplay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opener(t))
			h.cfg = cfg
			tt.fn(t, h)
			for _, id := range h.tenantsSeen() {
				CheckInvariants(t, h.store, id)
			}
			CheckTree(t, h.store)
			CheckLedger(t, h.store)
		})
	}
}

// clock is a controllable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type harness struct {
	cfg    Config
	t      *testing.T
	open   func() quota.Store
	store  quota.Store
	engine *quota.Engine
	clock  *clock
	ctx    context.Context
	mu     sync.Mutex
	seen   map[string]bool
}

var admin = quota.Actor{Name: "suite", Role: quota.RoleAdmin}

func newHarness(t *testing.T, open func() quota.Store) *harness {
	h := &harness{t: t, open: open, clock: &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		ctx: context.Background(), seen: map[string]bool{}}
	h.store, h.engine = h.start()
	return h
}

// start opens a store and starts an engine on it; both stop with the test.
func (h *harness) start() (quota.Store, *quota.Engine) {
	st := h.open()
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), Now: h.clock.Now,
		SweepInterval: time.Hour /* tests sweep by hand */})
	if err := e.Start(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		e.Stop(context.Background())
		st.Close()
	})
	return st, e
}

func (h *harness) tenantsSeen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id := range h.seen {
		if _, err := h.store.Tenant(h.ctx, id); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// do runs one change on the harness's engine.
func (h *harness) do(ops ...quota.Op) (*quota.Result, error) {
	return h.doOn(h.engine, false, ops...)
}

func (h *harness) doOn(e *quota.Engine, dryRun bool, ops ...quota.Op) (*quota.Result, error) {
	h.mu.Lock()
	for _, op := range ops {
		if f := reflect.ValueOf(op).Elem().FieldByName("Tenant"); f.IsValid() && f.String() != "" {
			h.seen[f.String()] = true
		}
	}
	h.mu.Unlock()
	return e.Do(h.ctx, quota.Change{Actor: admin, DryRun: dryRun, Ops: ops})
}

func (h *harness) must(ops ...quota.Op) *quota.Result {
	h.t.Helper()
	res, err := h.do(ops...)
	if err != nil {
		h.t.Fatalf("%v: %v", ops[0].Type(), err)
	}
	return res
}

func (h *harness) refused(code quota.Code, ops ...quota.Op) *quota.Error {
	h.t.Helper()
	_, err := h.do(ops...)
	qe, ok := errors.AsType[*quota.Error](err)
	if !ok || qe.Code != code {
		h.t.Fatalf("%v: err = %v, want %s", ops[0].Type(), err, code)
	}
	return qe
}

func createTenant(id, plan string) quota.Op {
	return &quota.CreateTenant{Tenant: id, Name: "Tenant " + id, Plan: plan}
}

func setHard(tenant, res string, hard int64) quota.Op {
	return &quota.SetQuota{Tenant: tenant, Resource: res, Quota: quota.QuotaOverride{Hard: &hard}}
}

func instance(tenant, id, state string, mem int64) *quota.PutConsumer {
	return &quota.PutConsumer{Tenant: tenant, Consumer: id,
		Spec: quota.Spec{Kind: "compute.instance", State: state, Attributes: map[string]int64{"memory_mb": mem}}}
}

func volume(tenant, id string, size int64) *quota.PutConsumer {
	return &quota.PutConsumer{Tenant: tenant, Consumer: id,
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": size}}}
}

func del(tenant, id string) *quota.DeleteConsumer {
	return &quota.DeleteConsumer{Tenant: tenant, Consumer: id}
}

func (h *harness) usage(tenant string) map[string]int64 {
	h.t.Helper()
	u, err := h.store.Usage(h.ctx, tenant)
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

func (h *harness) hard(tenant, res string) int64 {
	h.t.Helper()
	tn, err := h.store.Tenant(h.ctx, tenant)
	if err != nil {
		h.t.Fatal(err)
	}
	cat := quota.DefaultCatalog()
	return cat.Hard(tn, cat.Resource(res))
}

// CheckInvariants fails t unless the tenant's stored usage equals the sum of
// the footprints of its stored consumers, and no usage is negative.
func CheckInvariants(t testing.TB, st quota.Store, tenant string) {
	t.Helper()
	ctx := context.Background()
	used, err := st.Usage(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]int64{}
	after := ""
	for {
		cs, err := st.Consumers(ctx, quota.ConsumerFilter{Tenant: tenant, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			for r, v := range c.Footprint {
				sum[r] += v
			}
			after = c.ID
		}
		if len(cs) < 1000 {
			break
		}
	}
	for r, v := range used {
		if v < 0 {
			t.Errorf("tenant %s: %s usage is negative: %d", tenant, r, v)
		}
		if v != sum[r] {
			t.Errorf("tenant %s: %s usage %d, but its consumers' footprints add up to %d", tenant, r, v, sum[r])
		}
	}
	for r, v := range sum {
		if used[r] != v {
			t.Errorf("tenant %s: consumers use %d of %s, but usage says %d", tenant, v, r, used[r])
		}
	}
}

func testTenants(t *testing.T, h *harness) {
	h.must(createTenant("b", ""))
	h.must(createTenant("a", "pro"))
	h.refused(quota.CodeConflict, createTenant("a", ""))
	ts, err := h.store.Tenants(h.ctx)
	if err != nil || len(ts) != 2 || ts[0].ID != "a" || ts[1].ID != "b" {
		t.Fatalf("tenants = %v, %v", ts, err)
	}
	a, err := h.store.Tenant(h.ctx, "a")
	if err != nil || a.Name != "Tenant a" || a.Plan != "pro" || !a.CreatedAt.Equal(h.clock.Now()) {
		t.Fatalf("tenant a = %+v, %v", a, err)
	}
	if _, err := h.store.Tenant(h.ctx, "zz"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("missing tenant: %v", err)
	}
	h.must(volume("a", "v1", 10))
	h.refused(quota.CodeConflict, &quota.DeleteTenant{Tenant: "a"})
	h.must(del("a", "v1"))
	h.must(setHard("a", "compute.volumes", 3))
	h.must(&quota.DeleteTenant{Tenant: "a"})
	if _, err := h.store.Tenant(h.ctx, "a"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("deleted tenant still there: %v", err)
	}
	h.refused(quota.CodeNotFound, &quota.DeleteTenant{Tenant: "a"})
	// A tenant created again under the same id starts afresh.
	h.must(createTenant("a", ""))
	a, _ = h.store.Tenant(h.ctx, "a")
	if len(a.Quotas) != 0 || a.Plan != "" {
		t.Fatalf("recreated tenant kept old overrides: %+v", a)
	}
}

func testEffective(t *testing.T, h *harness) {
	cat := quota.DefaultCatalog()
	h.must(createTenant("f", "free"))
	mem := cat.Resource("compute.live_memory_mb")
	k := cat.Kind("compute.instance")
	f, _ := h.store.Tenant(h.ctx, "f")
	if cat.Hard(f, mem) != 512 || cat.Limit(f, k, k.LimitDef("memory_mb")) != (quota.Range{Min: 16, Max: 512}) {
		t.Fatalf("plan values not applied: %+v", f)
	}
	hard := int64(700)
	h.must(&quota.SetQuota{Tenant: "f", Resource: mem.Name,
		Quota: quota.QuotaOverride{Hard: &hard, Requestable: &quota.Range{Min: 5, Max: 6000}}})
	h.must(&quota.SetLimit{Tenant: "f", Kind: k.Name, Limit: "memory_mb", Range: quota.Range{Min: 32, Max: 600}})
	f, _ = h.store.Tenant(h.ctx, "f")
	if cat.Hard(f, mem) != 700 || cat.Requestable(f, mem) != (quota.Range{Min: 5, Max: 6000}) ||
		cat.Limit(f, k, k.LimitDef("memory_mb")) != (quota.Range{Min: 32, Max: 600}) {
		t.Fatalf("overrides not stored: %+v", f)
	}
	// Setting only hard keeps the requestable override.
	h.must(setHard("f", mem.Name, 800))
	f, _ = h.store.Tenant(h.ctx, "f")
	if cat.Hard(f, mem) != 800 || cat.Requestable(f, mem) != (quota.Range{Min: 5, Max: 6000}) {
		t.Fatalf("hard-only override lost the range: %+v", f.Quotas[mem.Name])
	}
	h.refused(quota.CodeLimitViolation, instance("f", "big", "running", 601))
	h.must(instance("f", "ok", "running", 600))
}

func testConsumerLifecycle(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	res := h.must(instance("t", "i1", "running", 256))
	c := res.Ops[0].Consumer
	if !res.Ops[0].Created || c.Generation != 1 || c.Attributes["vcpus"] != 1 {
		t.Fatalf("created = %+v", res.Ops[0])
	}
	want := map[string]int64{"compute.instances": 1, "compute.live_instances": 1, "compute.live_memory_mb": 256, "compute.live_vcpus": 1}
	if u := h.usage("t"); !maps.Equal(nonZero(u), want) {
		t.Fatalf("usage = %v, want %v", u, want)
	}
	got, err := h.store.Consumer(h.ctx, "t", "i1")
	if err != nil || got.Generation != 1 || got.State != "running" || !maps.Equal(got.Footprint, c.Footprint) ||
		!got.CreatedAt.Equal(h.clock.Now()) || got.ExpiresAt != nil {
		t.Fatalf("stored = %+v, %v", got, err)
	}
	// The same PUT again changes nothing.
	events := len(h.events(""))
	res = h.must(instance("t", "i1", "running", 256))
	if res.Ops[0].Changed || res.Ops[0].Consumer.Generation != 1 || len(h.events("")) != events {
		t.Fatalf("repeat changed something: %+v", res.Ops[0])
	}
	// Stopping frees live resources; the instance still counts.
	h.clock.Advance(time.Second)
	res = h.must(instance("t", "i1", "stopped", 256))
	if res.Ops[0].Consumer.Generation != 2 {
		t.Fatalf("generation after stop = %d", res.Ops[0].Consumer.Generation)
	}
	if u := nonZero(h.usage("t")); !maps.Equal(u, map[string]int64{"compute.instances": 1}) {
		t.Fatalf("usage after stop = %v", u)
	}
	got, _ = h.store.Consumer(h.ctx, "t", "i1")
	if !got.UpdatedAt.Equal(h.clock.Now()) || got.CreatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("timestamps after update: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}
	// Starting again is checked against the quota again.
	h.must(setHard("t", "compute.live_memory_mb", 100))
	h.refused(quota.CodeQuotaExceeded, instance("t", "i1", "running", 256))
	h.must(setHard("t", "compute.live_memory_mb", 2048))
	h.must(instance("t", "i1", "running", 256))
	// A consumer's kind cannot change.
	h.refused(quota.CodeConflict, volume("t", "i1", 4))
	h.must(del("t", "i1"))
	if u := nonZero(h.usage("t")); len(u) != 0 {
		t.Fatalf("usage after delete = %v", u)
	}
	h.refused(quota.CodeNotFound, del("t", "i1"))
	if _, err := h.store.Consumer(h.ctx, "t", "i1"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("deleted consumer: %v", err)
	}
	h.refused(quota.CodeNotFound, instance("nobody", "i1", "running", 16))
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func testRefusals(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.live_instances", 1))
	h.must(instance("t", "i1", "running", 64))
	qe := h.refused(quota.CodeQuotaExceeded, instance("t", "i2", "running", 64))
	want := quota.Violation{Tenant: "t", Resource: "compute.live_instances", Used: 1, Hard: 1, Requested: 1, Available: 0}
	if len(qe.Violations) != 1 || qe.Violations[0] != want {
		t.Fatalf("violations = %+v", qe.Violations)
	}
	qe = h.refused(quota.CodeLimitViolation, instance("t", "i2", "stopped", 4096))
	wantA := quota.Violation{Kind: "compute.instance", Attribute: "memory_mb", Value: 4096, Min: 16, Max: 2048}
	if len(qe.Violations) != 1 || qe.Violations[0] != wantA {
		t.Fatalf("violations = %+v", qe.Violations)
	}
	if _, err := h.store.Consumer(h.ctx, "t", "i2"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatal("a refused claim left a consumer")
	}
}

func testShrinkWhileOverQuota(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(volume("t", "v1", 500))
	res := h.must(setHard("t", "compute.total_volume_mb", 100))
	if !res.Ops[0].OverQuota {
		t.Fatal("setting hard below usage is not reported as over quota")
	}
	h.refused(quota.CodeQuotaExceeded, volume("t", "v2", 2))
	h.refused(quota.CodeQuotaExceeded, volume("t", "v1", 501))
	h.must(volume("t", "v1", 300)) // shrinking works while still over
	if u := h.usage("t"); u["compute.total_volume_mb"] != 300 {
		t.Fatalf("usage = %v", u)
	}
}

func testDryRun(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 1))
	before := h.usage("t")
	events := len(h.events(""))
	dry, err := h.doOn(h.engine, true, volume("t", "v1", 10))
	if err != nil || !dry.Ops[0].Created || dry.Ops[0].Usage["compute.volumes"] != 1 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if _, err := h.store.Consumer(h.ctx, "t", "v1"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatal("a dry run created a consumer")
	}
	if after := h.usage("t"); !maps.Equal(nonZero(after), nonZero(before)) || len(h.events("")) != events {
		t.Fatalf("a dry run changed usage (%v, was %v) or wrote an event (%d, were %d)", after, before, len(h.events("")), events)
	}
	real := h.must(volume("t", "v1", 10))
	if !maps.Equal(real.Ops[0].Usage, dry.Ops[0].Usage) || real.Ops[0].Created != dry.Ops[0].Created {
		t.Fatalf("dry run answered %+v, the real run %+v", dry.Ops[0], real.Ops[0])
	}
	// A dry run is refused exactly as the real change would be.
	if _, err := h.doOn(h.engine, true, volume("t", "v2", 10)); quota.ErrorCode(err) != quota.CodeQuotaExceeded {
		t.Fatalf("dry run of an over-quota claim: %v", err)
	}
}

func testIfMatch(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	op := volume("t", "v1", 10)
	op.IfMatch = 1
	h.refused(quota.CodeGenerationMismatch, op) // does not exist yet
	h.must(volume("t", "v1", 10))
	op = volume("t", "v1", 20)
	op.IfMatch = 1
	h.must(op)
	h.refused(quota.CodeGenerationMismatch, op) // now at 2
	d := del("t", "v1")
	d.IfMatch = 1
	h.refused(quota.CodeGenerationMismatch, d)
	d.IfMatch = 2
	h.must(d)
}

func testBatch(t *testing.T, h *harness) {
	h.must(createTenant("a", ""))
	h.must(createTenant("b", ""))
	h.must(setHard("b", "compute.volumes", 1))
	qe := h.refused(quota.CodeQuotaExceeded, volume("a", "v1", 2), volume("b", "v1", 2), volume("b", "v2", 2))
	if qe.Operation == nil || *qe.Operation != 2 {
		t.Fatalf("failing operation = %v", qe.Operation)
	}
	for _, k := range []quota.ConsumerKey{{Tenant: "a", ID: "v1"}, {Tenant: "b", ID: "v1"}} {
		if _, err := h.store.Consumer(h.ctx, k.Tenant, k.ID); quota.ErrorCode(err) != quota.CodeNotFound {
			t.Fatalf("refused batch applied %v", k)
		}
	}
	// Later operations see earlier ones of the same batch.
	res := h.must(volume("a", "v1", 5), volume("a", "v1", 7), del("a", "v1"), volume("b", "v1", 2))
	if res.Ops[1].Consumer.Generation != 2 || res.Ops[2].Usage["compute.volumes"] != 0 {
		t.Fatalf("batch results = %+v", res.Ops)
	}
	if u := nonZero(h.usage("a")); len(u) != 0 {
		t.Fatalf("a usage = %v", u)
	}
	// Concurrent batches that each fit but not together: one is refused.
	h.must(setHard("a", "compute.volumes", 3))
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 2 {
		wg.Go(func() {
			if _, err := h.do(volume("a", fmt.Sprintf("x%d", i), 2), volume("a", fmt.Sprintf("y%d", i), 2)); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of two batches of 2 admitted under a quota of 3", ok.Load())
	}
}

func testReservations(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 2))
	res := h.must(&quota.PutConsumer{Tenant: "t", Consumer: "r1",
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}, TTL: time.Minute}})
	if exp := res.Ops[0].Consumer.ExpiresAt; exp == nil || !exp.Equal(h.clock.Now().Add(time.Minute)) {
		t.Fatalf("expires_at = %v", exp)
	}
	h.must(&quota.PutConsumer{Tenant: "t", Consumer: "r2",
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}, TTL: time.Minute}})
	// The reservations hold usage: a third volume is refused.
	h.refused(quota.CodeQuotaExceeded, volume("t", "v3", 2))
	// r1 is confirmed by a PUT without a TTL; r2 runs out.
	h.must(volume("t", "r1", 10))
	if c, _ := h.store.Consumer(h.ctx, "t", "r1"); c.ExpiresAt != nil {
		t.Fatal("confirmed reservation still expires")
	}
	n, err := h.engine.Sweep(h.ctx)
	if err != nil || n != 0 {
		t.Fatalf("sweep before expiry released %d, %v", n, err)
	}
	h.clock.Advance(time.Minute)
	if n, err = h.engine.Sweep(h.ctx); err != nil || n != 1 {
		t.Fatalf("sweep released %d, %v; want 1", n, err)
	}
	if _, err := h.store.Consumer(h.ctx, "t", "r2"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatal("expired reservation still there")
	}
	if _, err := h.store.Consumer(h.ctx, "t", "r1"); err != nil {
		t.Fatal("confirmed reservation was released")
	}
	if u := h.usage("t"); u["compute.volumes"] != 1 {
		t.Fatalf("usage after expiry = %v", u)
	}
	if n, _ = h.engine.Sweep(h.ctx); n != 0 {
		t.Fatalf("second sweep released %d", n)
	}
	expired := 0
	for _, e := range h.events("t") {
		if e.Type == "consumer.expired" {
			expired++
			if e.Subject != "r2" || e.Role != quota.RoleSystem || e.After != nil {
				t.Fatalf("expiry event = %+v", e)
			}
		}
	}
	if expired != 1 {
		t.Fatalf("%d consumer.expired events, want 1", expired)
	}
}

// testExpiryByTime: a reservation whose time ran out is gone for every
// change, whether or not the sweeper has run: it cannot be confirmed.
func testExpiryByTime(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 60))
	reserve := func(id string) quota.Op {
		return &quota.PutConsumer{Tenant: "t", Consumer: id,
			Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}, TTL: time.Minute}}
	}
	for i := range 60 {
		h.must(reserve(fmt.Sprint("r", i)))
	}
	h.clock.Advance(time.Minute) // every reservation ran out; nobody swept
	for i := range 60 {
		confirm := volume("t", fmt.Sprint("r", i), 10)
		confirm.IfMatch = 1
		if _, err := h.do(confirm); quota.ErrorCode(err) != quota.CodeGenerationMismatch {
			t.Fatalf("confirming expired reservation r%d: %v, want generation_mismatch", i, err)
		}
	}
	// Claimed afresh, each is a new consumer, and the old claim is
	// recorded as expired first.
	res := h.must(volume("t", "r0", 10))
	if o := res.Ops[0]; !o.Created || o.Consumer.Generation != 1 {
		t.Fatalf("a PUT of an expired reservation: created %v, generation %d", o.Created, o.Consumer.Generation)
	}
	if n, err := h.engine.Sweep(h.ctx); err != nil || n != 59 {
		t.Fatalf("the sweep released %d (%v), want the other 59", n, err)
	}
	if u := h.usage("t"); u["compute.volumes"] != 1 {
		t.Fatalf("usage %v, want the one new volume", u)
	}
}

// testIncarnations: a tenant records where its history starts, so one
// created again under an old id reads nothing of the previous owner's.
func testIncarnations(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(volume("t", "old", 10))
	h.must(del("t", "old"))
	h.must(&quota.DeleteTenant{Tenant: "t"})
	h.must(createTenant("t", ""))
	tn, err := h.store.Tenant(h.ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var creations []int64
	for _, e := range h.events("t") {
		if e.Type == quota.EventTenantCreate {
			creations = append(creations, e.Seq)
		}
	}
	if len(creations) != 2 || tn.CreatedSeq != creations[1] {
		t.Fatalf("created_seq %d; tenant.create events at %v: want the second", tn.CreatedSeq, creations)
	}
}

func testTokens(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	tok := &quota.Token{Name: "ci", Role: quota.RoleTenant, Tenant: "t", Hash: []byte("0123456789abcdef0123456789abcdef")}
	h.must(&quota.PutToken{Token: tok})
	h.refused(quota.CodeConflict, &quota.PutToken{Token: tok})
	ak := &quota.Token{Name: "AK123", Role: quota.RoleTenant, Tenant: "t", Sealed: []byte{1, 2, 3}}
	h.must(&quota.PutToken{Token: ak})
	got, err := h.store.Token(h.ctx, "ci")
	if err != nil || got.Role != quota.RoleTenant || got.Tenant != "t" || string(got.Hash) != string(tok.Hash) || got.RevokedAt != nil {
		t.Fatalf("token = %+v, %v", got, err)
	}
	if got, _ := h.store.Token(h.ctx, "AK123"); string(got.Sealed) != "\x01\x02\x03" || got.Hash != nil {
		t.Fatalf("access key = %+v", got)
	}
	h.clock.Advance(time.Second)
	h.must(&quota.RevokeToken{Name: "ci"})
	if got, _ := h.store.Token(h.ctx, "ci"); got.RevokedAt == nil || !got.RevokedAt.Equal(h.clock.Now()) {
		t.Fatalf("revoked token = %+v", got)
	}
	h.refused(quota.CodeNotFound, &quota.RevokeToken{Name: "nope"})
	if ts, _ := h.store.Tokens(h.ctx); len(ts) != 2 {
		t.Fatalf("tokens = %v", ts)
	}
	// Deleting a tenant removes its tokens.
	h.must(&quota.DeleteTenant{Tenant: "t"})
	if _, err := h.store.Token(h.ctx, "ci"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatal("a deleted tenant's token survived")
	}
}

func (h *harness) events(tenant string) []*quota.Event {
	h.t.Helper()
	es, err := h.store.Events(h.ctx, quota.EventFilter{Tenant: tenant, Limit: 100000})
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

// eventTypes lists the types of a tenant's events after seq.
func (h *harness) eventTypes(tenant string, after int64) []string {
	var out []string
	for _, e := range h.events(tenant) {
		if e.Seq > after {
			out = append(out, string(e.Type))
		}
	}
	return out
}

func (h *harness) lastSeq() int64 {
	es := h.events("")
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

func testEvents(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(createTenant("u", ""))
	h.must(volume("t", "v1", 10))
	h.refused(quota.CodeLimitViolation, volume("t", "v2", 1<<40)) // refused: no event
	h.must(volume("t", "v1", 20), volume("u", "v1", 5))
	h.must(setHard("t", "compute.volumes", 5))
	h.must(del("t", "v1"))
	var types []string
	var last int64
	for _, e := range h.events("t") {
		if e.Seq <= last {
			t.Fatalf("sequence not increasing: %d after %d", e.Seq, last)
		}
		last = e.Seq
		if e.Tenant != "t" || e.Actor != "suite" || e.Role != quota.RoleAdmin || !e.Time.Equal(h.clock.Now()) {
			t.Fatalf("event = %+v", e)
		}
		types = append(types, string(e.Type))
	}
	want := []string{"tenant.create", "consumer.put", "consumer.put", "quota.set", "consumer.delete"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events of t = %v, want %v", types, want)
	}
	if all := h.events(""); len(all) != 7 {
		t.Fatalf("%d events in all, want 7", len(all))
	}
	page, err := h.store.Events(h.ctx, quota.EventFilter{After: h.events("")[2].Seq, Limit: 2})
	if err != nil || len(page) != 2 || page[0].Seq != h.events("")[3].Seq {
		t.Fatalf("paged events = %v, %v", page, err)
	}
	put := h.events("t")[2]
	if put.Before == nil || put.After == nil {
		t.Fatalf("update event lacks before or after: %+v", put)
	}
}

func testOverflow(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.total_volume_mb", math.MaxInt64))
	h.must(&quota.SetLimit{Tenant: "t", Kind: "compute.volume", Limit: "size_mb", Range: quota.Range{Min: 0, Max: math.MaxInt64}})
	h.must(volume("t", "v1", math.MaxInt64-5))
	qe := h.refused(quota.CodeQuotaExceeded, volume("t", "v2", 10))
	if qe.Violations[0].Used != math.MaxInt64-5 {
		t.Fatalf("violation = %+v", qe.Violations[0])
	}
	if u := h.usage("t"); u["compute.total_volume_mb"] != math.MaxInt64-5 {
		t.Fatalf("usage wrapped: %v", u)
	}
}

func testDurability(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 100))
	h.must(setHard("t", "compute.total_volume_mb", 1<<20))
	for i := range 50 {
		h.must(volume("t", fmt.Sprintf("v%d", i), int64(i+2)))
	}
	h.must(del("t", "v7"))
	want := h.usage("t")
	// Stop the engine (it commits what is queued) and reopen the database.
	if err := h.engine.Stop(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.store.Close()
	h.store, h.engine = h.start()
	if got := h.usage("t"); !maps.Equal(got, want) {
		t.Fatalf("usage after reopening = %v, want %v", got, want)
	}
	for i := range 50 {
		_, err := h.store.Consumer(h.ctx, "t", fmt.Sprintf("v%d", i))
		if (i == 7) != (quota.ErrorCode(err) == quota.CodeNotFound) {
			t.Fatalf("consumer v%d after reopening: %v", i, err)
		}
	}
}

// race runs n goroutines, spread over engines, each creating its own
// running instance, and returns how many were admitted.
func (h *harness) race(engines []*quota.Engine, tenant, prefix string, n int) int64 {
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for i := range n {
		wg.Go(func() {
			_, err := h.doOn(engines[i%len(engines)], false, instance(tenant, fmt.Sprintf("%s%d", prefix, i), "running", 16))
			switch quota.ErrorCode(err) {
			case "":
			case quota.CodeQuotaExceeded:
				return
			default:
				if err != nil {
					h.t.Errorf("claim %d: %v", i, err)
					return
				}
			}
			admitted.Add(1)
		})
	}
	wg.Wait()
	return admitted.Load()
}

func testRace(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.instances", 100000))
	h.must(setHard("t", "compute.live_vcpus", 100000))
	h.must(setHard("t", "compute.live_instances", 10))
	for round := range 5 {
		if got := h.race([]*quota.Engine{h.engine}, "t", fmt.Sprintf("r%d-", round), 200); got != 10 {
			t.Fatalf("round %d: %d admitted, want exactly 10", round, got)
		}
		CheckInvariants(t, h.store, "t")
		// Stop them all, so the next round races for the same 10 slots.
		cs, _ := h.store.Consumers(h.ctx, quota.ConsumerFilter{Tenant: "t", Limit: 1000})
		for _, c := range cs {
			h.must(instance("t", c.ID, "stopped", 16))
		}
	}
}

// testTwoProcesses races two engines, each with its own store on the same
// database, as two allot processes would.
func testTwoProcesses(t *testing.T, h *harness) {
	if h.cfg.OneProcess {
		t.Skip("the store serves one process; a second is refused (tested by the store's own tests)")
	}
	_, second := h.start()
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.instances", 100000))
	h.must(setHard("t", "compute.live_vcpus", 100000))
	h.must(setHard("t", "compute.live_instances", 25))
	for round := range 3 {
		if got := h.race([]*quota.Engine{h.engine, second}, "t", fmt.Sprintf("r%d-", round), 200); got != 25 {
			t.Fatalf("round %d: %d admitted across two processes, want exactly 25", round, got)
		}
		CheckInvariants(t, h.store, "t")
		cs, _ := h.store.Consumers(h.ctx, quota.ConsumerFilter{Tenant: "t", Limit: 1000})
		for _, c := range cs {
			h.must(instance("t", c.ID, "stopped", 16))
		}
	}
	// Both sweep the same expired reservation: it is released once.
	h.must(&quota.PutConsumer{Tenant: "t", Consumer: "res",
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}, TTL: time.Second}})
	h.clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	var released atomic.Int64
	for _, e := range []*quota.Engine{h.engine, second} {
		wg.Go(func() {
			n, err := e.Sweep(h.ctx)
			if err != nil {
				t.Error(err)
			}
			released.Add(int64(n))
		})
	}
	wg.Wait()
	expired := 0
	for _, e := range h.events("t") {
		if e.Type == "consumer.expired" {
			expired++
		}
	}
	if released.Load() != 1 || expired != 1 {
		t.Fatalf("released %d times with %d events, want once", released.Load(), expired)
	}
}

func testListConsumers(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(createTenant("u", ""))
	for i := range 5 {
		h.must(instance("t", fmt.Sprintf("i%d", i), []string{"running", "stopped"}[i%2], 16))
	}
	h.must(volume("t", "v0", 2))
	h.must(volume("u", "v9", 2))
	page := func(f quota.ConsumerFilter) []string {
		t.Helper()
		cs, err := h.store.Consumers(h.ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	if got := page(quota.ConsumerFilter{Tenant: "t", Limit: 100}); fmt.Sprint(got) != "[i0 i1 i2 i3 i4 v0]" {
		t.Fatalf("all = %v", got)
	}
	if got := page(quota.ConsumerFilter{Tenant: "t", After: "i1", Limit: 2}); fmt.Sprint(got) != "[i2 i3]" {
		t.Fatalf("page = %v", got)
	}
	if got := page(quota.ConsumerFilter{Tenant: "t", Kind: "compute.instance", State: "stopped", Limit: 100}); fmt.Sprint(got) != "[i1 i3]" {
		t.Fatalf("stopped instances = %v", got)
	}
	h.must(&quota.PutConsumer{Tenant: "t", Consumer: "r",
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}, TTL: time.Minute}})
	h.clock.Advance(time.Hour)
	exp, err := h.store.Expired(h.ctx, h.clock.Now(), 10)
	if err != nil || len(exp) != 1 || exp[0].ID != "r" {
		t.Fatalf("expired = %v, %v", exp, err)
	}
}

// testPin: the first value pinned under a key stays, for every process.
func testPin(t *testing.T, h *harness) {
	got, err := h.store.Pin(h.ctx, "fingerprint", "aaa")
	if err != nil || got != "aaa" {
		t.Fatalf("first pin = %q, %v; want aaa", got, err)
	}
	other := h.store
	if !h.cfg.OneProcess {
		other = h.open()
		defer other.Close()
	}
	if got, err := other.Pin(h.ctx, "fingerprint", "bbb"); err != nil || got != "aaa" {
		t.Fatalf("second pin = %q, %v; want the first value, aaa", got, err)
	}
	if got, err := h.store.Pin(h.ctx, "other", "ccc"); err != nil || got != "ccc" {
		t.Fatalf("pin of another key = %q, %v; want ccc", got, err)
	}
}
