package storetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// CheckLedger fails t unless replaying the whole ledger reproduces the
// stored usage of every tenant that exists.
func CheckLedger(t testing.TB, st quota.Store) {
	t.Helper()
	ctx := t.Context()
	replay := quota.NewReplay()
	after := int64(0)
	for {
		es, err := st.Events(ctx, quota.EventFilter{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Seq <= after {
				t.Fatalf("event %d after event %d: the ledger is out of order", e.Seq, after)
			}
			if err := replay.Apply(e); err != nil {
				t.Fatal(err)
			}
			after = e.Seq
		}
		if len(es) < 1000 {
			break
		}
	}
	ts, err := st.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts {
		used, err := st.Usage(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := nonZero(replay.Usage[tn.ID]), nonZero(used); !maps.Equal(got, want) {
			t.Errorf("tenant %s: replaying the ledger gives %v, the store holds %v", tn.ID, got, want)
		}
	}
}

func request(tenant, res string, value int64) quota.Op {
	return &quota.RequestQuota{Tenant: tenant, Resource: res, Value: value}
}

func decide(tenant, id string, approve bool) quota.Op {
	return &quota.Decide{Tenant: tenant, ID: id, Approve: approve, Comment: "ok"}
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

func testRequestPolicy(t *testing.T, h *harness) {
	h.must(createTenant("t", "")) // compute.instances: default 10, requestable 1–100, auto; dcs.instances: 10, 1–10, review
	h.must(instance("t", "vm-1", "stopped", 16), instance("t", "vm-2", "stopped", 16), instance("t", "vm-3", "stopped", 16))

	type step struct {
		name   string
		op     func() quota.Op
		code   quota.Code
		status quota.RequestStatus
		hard   int64 // the resource's hard quota after
		events []string
	}
	var pendingID string
	steps := []step{
		{"auto inside the range", func() quota.Op { return request("t", "compute.instances", 40) }, "", quota.RequestApproved, 40,
			[]string{"request.create", "request.approve", "quota.set"}},
		{"outside the range", func() quota.Op { return request("t", "compute.instances", 101) }, quota.CodeOutsideRange, "", 40, nil},
		{"below usage", func() quota.Op { return request("t", "compute.instances", 2) }, quota.CodeBelowUsage, "", 40, nil},
		{"auto decrease to usage", func() quota.Op { return request("t", "compute.instances", 3) }, "", quota.RequestApproved, 3,
			[]string{"request.create", "request.approve", "quota.set", string(quota.EventThreshold), string(quota.EventThreshold)}},
		{"review inside the range", func() quota.Op { return request("t", "dcs.instances", 5) }, "", quota.RequestPending, 10,
			[]string{"request.create"}},
		{"duplicate", func() quota.Op { return request("t", "dcs.instances", 5) }, "", quota.RequestPending, 10, nil},
		{"replacement", func() quota.Op { return request("t", "dcs.instances", 7) }, "", quota.RequestPending, 10,
			[]string{"request.supersede", "request.create"}},
		{"deny", func() quota.Op { return decide("t", pendingID, false) }, "", quota.RequestDenied, 10, []string{"request.deny"}},
		{"deny again", func() quota.Op { return decide("t", pendingID, false) }, quota.CodeConflict, "", 10, nil},
		{"ask again", func() quota.Op { return request("t", "dcs.instances", 2) }, "", quota.RequestPending, 10, []string{"request.create"}},
		{"approve", func() quota.Op { return decide("t", pendingID, true) }, "", quota.RequestApproved, 2,
			[]string{"request.approve", "quota.set"}},
		{"unknown request", func() quota.Op { return decide("t", "req-nope", true) }, quota.CodeNotFound, "", 2, nil},
	}
	var firstDup string
	for _, s := range steps {
		before := h.lastSeq()
		op := s.op()
		res, err := h.do(op)
		if s.code != "" {
			if quota.ErrorCode(err) != s.code {
				t.Fatalf("%s: err = %v, want %s", s.name, err, s.code)
			}
		} else {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			r := res.Ops[0].Request
			if r.Status != s.status {
				t.Fatalf("%s: status %s, want %s", s.name, r.Status, s.status)
			}
			if stored, err := h.store.Request(h.ctx, "t", r.ID); err != nil || stored.Status != s.status || len(stored.History) == 0 {
				t.Fatalf("%s: stored request %+v, %v", s.name, stored, err)
			}
			pendingID = r.ID
			switch s.name {
			case "review inside the range":
				firstDup = r.ID
			case "duplicate":
				if r.ID != firstDup || res.Ops[0].Created {
					t.Fatalf("duplicate: got %s (created %v), want the open request %s", r.ID, res.Ops[0].Created, firstDup)
				}
			case "replacement":
				old, _ := h.store.Request(h.ctx, "t", firstDup)
				if old.Status != quota.RequestSuperseded {
					t.Fatalf("replaced request is %s, want superseded", old.Status)
				}
			}
		}
		res0 := "compute.instances"
		if s.name != "auto inside the range" && s.name != "outside the range" && s.name != "below usage" && s.name != "auto decrease to usage" {
			res0 = "dcs.instances"
		}
		if got := h.hard("t", res0); got != s.hard {
			t.Fatalf("%s: hard quota of %s is %d, want %d", s.name, res0, got, s.hard)
		}
		if got := h.eventTypes("t", before); !slices.Equal(got, s.events) {
			t.Fatalf("%s: events %v, want %v", s.name, got, s.events)
		}
	}
	pending, err := h.store.Requests(h.ctx, quota.RequestFilter{Tenant: "t", Status: "pending", Limit: 10})
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending requests left: %v %v", pending, err)
	}
	all, _ := h.store.Requests(h.ctx, quota.RequestFilter{Tenant: "t", Limit: 100})
	if len(all) != 5 {
		t.Fatalf("%d requests stored, want 5", len(all))
	}
}

func testThresholds(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 10)) // thresholds 80 and 100
	crossings := func(after int64) []string {
		var out []string
		for _, e := range h.events("t") {
			if e.Seq > after && e.Type == quota.EventThreshold {
				var v struct {
					Threshold int64
					Direction string
				}
				json.Unmarshal(e.After, &v)
				out = append(out, fmt.Sprintf("%s %d %s", e.Subject, v.Threshold, v.Direction))
			}
		}
		return out
	}
	step := func(name string, want []string, ops ...quota.Op) {
		t.Helper()
		seq := h.lastSeq()
		h.must(ops...)
		if got := crossings(seq); !slices.Equal(got, want) {
			t.Fatalf("%s: notified %v, want %v", name, got, want)
		}
	}
	for i := range 7 {
		step(fmt.Sprint(10*(i+1), "%"), nil, volume("t", fmt.Sprint("v", i), 2))
	}
	step("80%", []string{"compute.volumes 80 up"}, volume("t", "v7", 2))
	step("90%", nil, volume("t", "v8", 2))
	step("100%", []string{"compute.volumes 100 up"}, volume("t", "v9", 2))
	step("down and up in one change", nil, del("t", "v0"), volume("t", "v10", 2))
	seq := h.lastSeq()
	if _, err := h.doOn(h.engine, true, del("t", "v1")); err != nil {
		t.Fatal(err)
	}
	if got := crossings(seq); got != nil {
		t.Fatalf("a dry run notified %v", got)
	}
	step("90% again", []string{"compute.volumes 100 down"}, del("t", "v1"))
	step("70%", []string{"compute.volumes 80 down"}, del("t", "v2"), del("t", "v3"))
	step("a lower quota crosses both", []string{"compute.volumes 80 up", "compute.volumes 100 up"}, setHard("t", "compute.volumes", 5))
	step("own thresholds: no crossing is invented", nil, &quota.SetThresholds{Tenant: "t", Thresholds: []int64{50, 90, 150}})
	step("175%", []string{"compute.volumes 150 up"}, setHard("t", "compute.volumes", 4))
}

func testReconcile(t *testing.T, h *harness) {
	h.must(createTenant("t", "free")) // 2 instances, 512 MB live memory
	h.must(instance("t", "kept", "running", 128), instance("t", "gone", "running", 128), volume("t", "vol", 10))
	inv := &quota.Reconcile{Tenant: "t", Kinds: []string{"compute.instance"}, Inventory: []quota.InventoryItem{
		{ID: "kept", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256}}},
		{ID: "new-1", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256}}},
		{ID: "new-2", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 4096}}},
	}}
	before := h.usage("t")
	seq := h.lastSeq()
	res, err := h.doOn(h.engine, true, inv)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Ops[0].Reconcile; !slices.Equal(r.Created, []string{"new-1", "new-2"}) || !slices.Equal(r.Updated, []string{"kept"}) || !slices.Equal(r.Deleted, []string{"gone"}) {
		t.Fatalf("dry run diff %+v", r)
	}
	if !maps.Equal(h.usage("t"), before) || h.lastSeq() != seq {
		t.Fatal("a dry run changed something")
	}
	res = h.must(inv)
	o := res.Ops[0]
	if got := o.Usage["compute.live_memory_mb"]; got != 256+256+4096 {
		t.Fatalf("live memory %d after reconciling", got)
	}
	if o.Usage["compute.instances"] != 3 || o.Usage["compute.volumes"] != 1 {
		t.Fatalf("usage after reconciling: %v (volumes are not covered and stay)", o.Usage)
	}
	for _, e := range h.events("t") {
		if e.Seq > seq && e.Type != quota.EventThreshold && e.Reason != "reconcile" {
			t.Errorf("event %s %s has reason %q, want reconcile", e.Type, e.Subject, e.Reason)
		}
	}
	// Reality wins over quotas: the tenant is now over, and new claims are refused.
	h.refused(quota.CodeQuotaExceeded, instance("t", "more", "stopped", 16))
	// The same inventory again changes nothing.
	if r := h.must(inv).Ops[0]; r.Changed {
		t.Fatalf("reconciling twice changed %+v", r.Reconcile)
	}
	// Drift the other way: everything went away.
	r := h.must(&quota.Reconcile{Tenant: "t", Kinds: []string{"compute.instance"}}).Ops[0]
	if len(r.Reconcile.Deleted) != 3 || r.Usage["compute.instances"] != 0 {
		t.Fatalf("emptying: %+v %v", r.Reconcile, r.Usage)
	}
}

// testLedgerReplay runs random operation sequences and holds the ledger
// to the state: replaying it reproduces every tenant's usage.
func testLedgerReplay(t *testing.T, h *harness) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	tenants := []string{"a", "b", "c"}
	for _, id := range tenants {
		h.must(createTenant(id, []string{"", "free", "pro"}[rng.IntN(3)]))
	}
	states := []string{"running", "standby", "stopped"}
	for range 300 {
		tn := tenants[rng.IntN(len(tenants))]
		id := fmt.Sprint("c", rng.IntN(12))
		var ops []quota.Op
		for range 1 + rng.IntN(3) {
			switch rng.IntN(6) {
			case 0, 1:
				ops = append(ops, instance(tn, id+"i", states[rng.IntN(3)], int64(16+rng.IntN(600))))
			case 2:
				ops = append(ops, volume(tn, id+"v", int64(2+rng.IntN(300))))
			case 3:
				ops = append(ops, del(tn, id+"i"))
			case 4:
				ops = append(ops, setHard(tn, []string{"compute.instances", "compute.volumes", "compute.live_memory_mb"}[rng.IntN(3)], int64(rng.IntN(2000))))
			case 5:
				op := volume(tn, id+"r", int64(2+rng.IntN(100)))
				op.Spec.TTL = time.Duration(1+rng.IntN(5)) * time.Second
				ops = append(ops, op)
			}
		}
		h.doOn(h.engine, rng.IntN(8) == 0, ops...) // refusals are part of the test
		if rng.IntN(10) == 0 {
			h.clock.Advance(2 * time.Second)
			if _, err := h.engine.Sweep(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	CheckLedger(t, h.store)
}

// testOutbox checks that events reach the outbox with their change, in
// order, one in flight per webhook and tenant.
func testOutbox(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(createTenant("u", ""))
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/all", Events: []string{"*"}, Sealed: []byte("x")}})
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/u", Events: []string{"consumer.put"}, Tenant: "u", Sealed: []byte("x")}})
	hooks, err := h.store.Webhooks(h.ctx)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("webhooks: %v %v", hooks, err)
	}
	if hooks[0].Tenant == "u" {
		hooks[0], hooks[1] = hooks[1], hooks[0]
	}
	h.must(volume("t", "v1", 2))
	h.must(volume("t", "v2", 2))
	h.must(volume("u", "v1", 2))
	if _, err := h.doOn(h.engine, true, volume("u", "dry", 2)); err != nil {
		t.Fatal(err)
	}
	h.refused(quota.CodeNotFound, del("u", "nothing"))

	now := h.clock.Now()
	got := map[string][]string{} // webhook URL → "tenant type subject", in delivery order
	for round := 0; ; round++ {
		ds, err := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		lines := map[string]bool{}
		for _, d := range ds {
			line := d.Webhook.ID + "/" + d.Event.Tenant
			if lines[line] {
				t.Fatalf("two deliveries of one line in flight at once: %s", line)
			}
			lines[line] = true
			// Leased: nobody else gets it.
			if again, _ := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 100); len(again) != 0 {
				t.Fatalf("leased deliveries handed out again: %d", len(again))
			}
		}
		for i, d := range ds {
			if round == 0 && i < 2 {
				// A failed attempt keeps its place in line until retried.
				if err := h.store.FinishDelivery(h.ctx, d.ID, false, now.Add(time.Second), "refused"); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := h.store.FinishDelivery(h.ctx, d.ID, true, time.Time{}, ""); err != nil {
				t.Fatal(err)
			}
			got[d.Webhook.URL] = append(got[d.Webhook.URL], d.Event.Tenant+" "+string(d.Event.Type)+" "+d.Event.Subject)
		}
		now = now.Add(2 * time.Second)
	}
	want := map[string][]string{
		"http://127.0.0.1:1/all": {"t consumer.put v1", "t consumer.put v2", "u webhook.create " + hooks[1].ID, "u consumer.put v1"},
		"http://127.0.0.1:1/u":   {"u consumer.put v1"},
	}
	// Order is promised per tenant: compare the tenants' lines.
	perTenant := func(ls []string) map[string][]string {
		m := map[string][]string{}
		for _, l := range ls {
			if tn := firstField(l); tn != "" {
				m[tn] = append(m[tn], l)
			}
		}
		return m
	}
	for url, lines := range want {
		g, w := perTenant(got[url]), perTenant(lines)
		for tn := range w {
			if !slices.Equal(g[tn], w[tn]) {
				t.Errorf("%s, tenant %s: delivered %v, want %v", url, tn, g[tn], w[tn])
			}
		}
	}
	// Deleting a webhook drops what it had pending.
	h.must(volume("u", "v2", 2))
	h.must(&quota.DeleteWebhook{ID: hooks[1].ID})
	for _, d := range mustLease(t, h, now) {
		if d.Webhook.ID == hooks[1].ID {
			t.Fatalf("a deleted webhook still has deliveries")
		}
	}
}

func firstField(l string) string {
	f, _, _ := strings.Cut(l, " ")
	return f
}

func mustLease(t *testing.T, h *harness, now time.Time) []*quota.Delivery {
	t.Helper()
	ds, err := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func testPlanChange(t *testing.T, h *harness) {
	h.must(createTenant("t", "")) // compute.instances: 10 by the catalog
	h.must(instance("t", "a", "stopped", 16), instance("t", "b", "stopped", 16), instance("t", "c", "stopped", 16))
	seq := h.lastSeq()
	res := h.must(&quota.UpdateTenant{Tenant: "t", Plan: "free", Name: "Renamed"}) // free: 2 instances
	if tn := res.Ops[0].Tenant; tn.Plan != "free" || tn.Name != "Renamed" {
		t.Fatalf("after the update: %+v", tn)
	}
	if got := h.hard("t", "compute.instances"); got != 2 {
		t.Fatalf("hard after moving to free: %d, want 2", got)
	}
	types := h.eventTypes("t", seq)
	if len(types) == 0 || types[0] != "tenant.update" || !slices.Contains(types, string(quota.EventThreshold)) {
		t.Fatalf("events of the plan change: %v", types)
	}
	h.refused(quota.CodeQuotaExceeded, instance("t", "d", "stopped", 16)) // over the new plan: no growth
	h.must(del("t", "a"))                                                 // shrinking is always allowed
	if r := h.must(&quota.UpdateTenant{Tenant: "t", Plan: "free"}); r.Ops[0].Changed {
		t.Fatal("the same plan again changed something")
	}
	h.must(&quota.UpdateTenant{Tenant: "t", Plan: "-"})
	if got := h.hard("t", "compute.instances"); got != 10 {
		t.Fatalf("hard with no plan: %d, want 10", got)
	}
	if _, err := h.do(&quota.UpdateTenant{Tenant: "t", Plan: "gold"}); quota.ErrorCode(err) != quota.CodeInvalid {
		t.Fatalf("an unknown plan: %v", err)
	}
	if _, err := h.do(&quota.UpdateTenant{Tenant: "nobody", Plan: "free"}); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("an unknown tenant: %v", err)
	}
}
