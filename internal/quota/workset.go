package quota

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// workset is the state one batch reads and changes: the committer's
// memory for the batch's tenants, overlaid with what the batch has done so
// far. Changes are evaluated in order against it; a change that fails (or
// is a dry run) is undone before the next one runs, so each change sees
// exactly the changes admitted before it. Once the batch is evaluated,
// finish moves its final values into the committer's memory.
type workset struct {
	st  *state
	cat *Catalog
	now time.Time

	tenants   map[string]*Tenant // nil: does not exist
	usage     map[string]map[string]int64
	below     map[string]map[string]int64  // what each tenant's descendants use
	subtrees  map[string]map[string]string // moves and deletes: the tenant's descendants → their parents
	consumers map[ConsumerKey]*Consumer    // nil: does not exist
	tokens    map[string]*Token            // nil: does not exist
	counts    map[string]int64             // consumers per tenant, for tenants about to be deleted
	requests  map[string]*Request          // by ID: those named and every pending one of the tenants
	listed    map[string][]*Consumer       // reconcile: a tenant's consumers of the kinds covered
	webhooks  map[string]*Webhook          // every subscription; nil: deleted

	dirtyTenants   map[string]bool
	deletedTenants map[string]bool
	dirtyQuotas    map[[2]string]bool
	dirtyLimits    map[[2]string]bool
	dirtyConsumers map[ConsumerKey]bool
	dirtyUsage     map[[2]string]bool
	dirtyBelow     map[[2]string]bool
	dirtyTokens    map[string]bool
	dirtyRequests  map[string]bool
	dirtyWebhooks  map[string]bool
	// touched holds, for the change being run, each tenant resource's usage
	// and hard quota before the change first moved them; newThresholds, the
	// tenants whose thresholds it set. notify compares them with after.
	touched       map[[2]string]usageMark
	newThresholds map[string]bool
	events        []*Event

	undo []func()
}

// expiredActor releases reservations whose time ran out.
var expiredChange = &Change{Actor: Actor{Name: "allot", Role: RoleSystem}, Reason: "expired"}

// newWorkset takes the batch's tenants from memory, its consumers from
// have (see state.prepare) and the rest from tx.
func newWorkset(ctx context.Context, st *state, tx Tx, now time.Time, n *needs, have map[ConsumerKey]*Consumer) (*workset, error) {
	ws := &workset{
		st: st, cat: st.cat, now: now,
		tenants: map[string]*Tenant{}, usage: map[string]map[string]int64{}, below: map[string]map[string]int64{},
		subtrees: map[string]map[string]string{}, dirtyBelow: map[[2]string]bool{},
		consumers: map[ConsumerKey]*Consumer{}, tokens: map[string]*Token{}, counts: map[string]int64{},
		requests: map[string]*Request{}, listed: map[string][]*Consumer{}, webhooks: maps.Clone(st.webhooks),
		dirtyTenants: map[string]bool{}, deletedTenants: map[string]bool{},
		dirtyQuotas: map[[2]string]bool{}, dirtyLimits: map[[2]string]bool{},
		dirtyConsumers: map[ConsumerKey]bool{}, dirtyUsage: map[[2]string]bool{}, dirtyTokens: map[string]bool{},
		dirtyRequests: map[string]bool{}, dirtyWebhooks: map[string]bool{},
	}
	ids := sortedKeys(n.tenants)
	for _, id := range ids {
		if ts := st.tenants[id]; ts != nil {
			ws.tenants[id] = ts.t
			ws.usage[id] = maps.Clone(ts.usage)
			if ts.below != nil {
				ws.below[id] = maps.Clone(ts.below)
			}
		} else {
			ws.usage[id] = map[string]int64{}
		}
	}
	maps.Copy(ws.consumers, have)
	var err error
	if len(n.tokens) > 0 {
		tokens, err := tx.Tokens(ctx, sortedKeys(n.tokens))
		if err != nil {
			return nil, err
		}
		for name := range n.tokens {
			ws.tokens[name] = tokens[name]
		}
	}
	if n.settled {
		if ws.requests, err = tx.Requests(ctx, ids, n.requests); err != nil {
			return nil, err
		}
	}
	for tenant, kinds := range n.listed {
		cs, err := tx.TenantConsumers(ctx, tenant, kinds, 0)
		if err != nil {
			return nil, err
		}
		ws.listed[tenant] = cs
		for _, c := range cs {
			if _, known := ws.consumers[c.Key()]; !known {
				ws.consumers[c.Key()] = c
			}
		}
	}
	for _, id := range n.subtrees {
		if ws.tenants[id] != nil {
			if ws.subtrees[id], err = tx.Subtree(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range n.counts {
		if ws.tenants[id] != nil {
			if ws.counts[id], err = tx.CountConsumers(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	return ws, nil
}

// run evaluates one change. On any error, or for a dry run, every effect of
// the change is undone before it returns.
func (ws *workset) run(ch *Change) (*Result, error) {
	mark, events := len(ws.undo), len(ws.events)
	ws.touched, ws.newThresholds = map[[2]string]usageMark{}, map[string]bool{}
	res := &Result{Ops: make([]OpResult, len(ch.Ops))}
	for i, op := range ch.Ops {
		r, err := op.apply(ws, ch)
		if err != nil {
			ws.rollback(mark, events)
			if qe, ok := err.(*Error); ok && len(ch.Ops) > 1 {
				qe.Operation = &i
			}
			return nil, err
		}
		res.Ops[i] = r
	}
	if ch.DryRun {
		ws.rollback(mark, events)
	} else {
		ws.notify(ch)
	}
	return res, nil
}

func (ws *workset) rollback(mark, events int) {
	for i := len(ws.undo) - 1; i >= mark; i-- {
		ws.undo[i]()
	}
	ws.undo = ws.undo[:mark]
	ws.events = ws.events[:events]
}

// Setters that remember how to undo themselves. Dirty marks are not undone:
// writing a key's unchanged final value is harmless.

func (ws *workset) setConsumer(k ConsumerKey, c *Consumer) {
	old := ws.consumers[k]
	ws.undo = append(ws.undo, func() { ws.consumers[k] = old })
	ws.consumers[k] = c
	ws.dirtyConsumers[k] = true
}

func (ws *workset) addUsage(tenant string, delta Footprint) {
	ws.addTo(ws.usage[tenant], ws.dirtyUsage, tenant, delta)
	for _, a := range ws.ancestors(tenant) {
		ws.addBelow(a, delta)
	}
}

// addTo applies delta to one of a tenant's usage maps (its own, or what
// its descendants use), recording how to undo it and which rows it dirtied.
func (ws *workset) addTo(m map[string]int64, dirty map[[2]string]bool, tenant string, delta Footprint) {
	for r := range delta {
		ws.touch(tenant, r)
		old, had := m[r]
		ws.undo = append(ws.undo, func() {
			if had {
				m[r] = old
			} else {
				delete(m, r)
			}
		})
		dirty[[2]string{tenant, r}] = true
	}
	ApplyDelta(m, delta)
}

// setTenant replaces a tenant with a new value (never mutated in place, so
// undo can restore the old pointer).
func (ws *workset) setTenant(id string, t *Tenant) {
	old := ws.tenants[id]
	ws.undo = append(ws.undo, func() { ws.tenants[id] = old })
	ws.tenants[id] = t
	ws.dirtyTenants[id] = true
}

func (ws *workset) setToken(name string, t *Token) {
	old := ws.tokens[name]
	ws.undo = append(ws.undo, func() { ws.tokens[name] = old })
	ws.tokens[name] = t
	ws.dirtyTokens[name] = true
}

func (ws *workset) event(ch *Change, typ EventType, tenant, subject string, before, after any) {
	e := &Event{
		Time: ws.now, Type: typ, Tenant: tenant, Subject: subject,
		Actor: ch.Actor.Name, Role: ch.Actor.Role, Reason: ch.Reason,
		Before: marshalView(before), After: marshalView(after),
	}
	ws.events = append(ws.events, e)
}

func (ws *workset) tenant(id string) (*Tenant, error) {
	t := ws.tenants[id]
	if t == nil {
		return nil, Errorf(CodeNotFound, "tenant %q not found", id)
	}
	return t, nil
}

func (ws *workset) usageOf(tenant string) map[string]int64 { return maps.Clone(ws.usage[tenant]) }

// releaseIfExpired returns the consumer at key, first releasing it if it
// is a reservation whose time ran out: expiry is decided by the
// reservation's time, never by when the sweeper last ran, so an expired
// reservation can be neither confirmed nor renewed.
func (ws *workset) releaseIfExpired(key ConsumerKey) *Consumer {
	c := ws.consumers[key]
	if c == nil || c.ExpiresAt == nil || c.ExpiresAt.After(ws.now) {
		return c
	}
	ws.removeConsumer(expiredChange, key, c, EventConsumerExpired)
	return nil
}

// removeConsumer deletes c and releases what it used.
func (ws *workset) removeConsumer(ch *Change, key ConsumerKey, c *Consumer, typ EventType) {
	ws.setConsumer(key, nil)
	ws.addUsage(key.Tenant, Delta(c.Footprint, nil))
	ws.countConsumer(key.Tenant, true, -1)
	ws.event(ch, typ, key.Tenant, key.ID, viewOf(c), nil)
}

// countConsumer keeps the consumer count of a tenant being deleted in step.
func (ws *workset) countConsumer(tenant string, changes bool, d int64) {
	if _, tracked := ws.counts[tenant]; tracked && changes {
		old := ws.counts[tenant]
		ws.undo = append(ws.undo, func() { ws.counts[tenant] = old })
		ws.counts[tenant] = old + d
	}
}

func cloneTenant(t *Tenant) *Tenant {
	c := *t
	c.Quotas = maps.Clone(t.Quotas)
	c.Limits = maps.Clone(t.Limits)
	if c.Quotas == nil {
		c.Quotas = map[string]QuotaOverride{}
	}
	if c.Limits == nil {
		c.Limits = map[string]Range{}
	}
	return &c
}

// writes collects the final value of everything the batch changed.
func (ws *workset) writes() *Writes {
	w := &Writes{Events: ws.events}
	for id := range ws.deletedTenants {
		w.DeleteTenants = append(w.DeleteTenants, id)
	}
	for id := range ws.dirtyTenants {
		if t := ws.tenants[id]; t != nil && !ws.deletedTenants[id] {
			w.CreateTenants = append(w.CreateTenants, t)
		}
	}
	// A key marked dirty by a change that was then undone may have no
	// override at all: nothing to write (no change removes an override).
	for k := range ws.dirtyQuotas {
		if t := ws.tenants[k[0]]; t != nil {
			if o, ok := t.Quotas[k[1]]; ok {
				w.Quotas = append(w.Quotas, QuotaRow{k[0], k[1], o})
			}
		}
	}
	for k := range ws.dirtyLimits {
		if t := ws.tenants[k[0]]; t != nil {
			if l, ok := t.Limits[k[1]]; ok {
				w.Limits = append(w.Limits, LimitRow{k[0], k[1], l})
			}
		}
	}
	for k := range ws.dirtyConsumers {
		if c := ws.consumers[k]; c != nil {
			w.PutConsumers = append(w.PutConsumers, c)
		} else {
			w.DeleteConsumers = append(w.DeleteConsumers, k)
		}
	}
	for k := range ws.dirtyUsage {
		if ws.tenants[k[0]] != nil {
			w.Usage = append(w.Usage, UsageRow{k[0], k[1], ws.usage[k[0]][k[1]]})
		}
	}
	// What each changed tenant's descendants use now, in the ledger too:
	// one event per tenant per batch, not one per claim, so that usage at a
	// past time and the replay know every level's tree usage.
	subtrees := map[string]bool{}
	for k := range ws.dirtyBelow {
		if ws.tenants[k[0]] != nil && !ws.deletedTenants[k[0]] {
			w.Below = append(w.Below, UsageRow{k[0], k[1], ws.below[k[0]][k[1]]})
			subtrees[k[0]] = true
		}
	}
	for _, id := range sortedKeys(subtrees) {
		ws.events = append(ws.events, &Event{Time: ws.now, Type: EventSubtreeUsage, Tenant: id, Subject: id,
			Actor: "allot", Role: RoleSystem, After: marshalView(belowView{Below: ws.below[id]})})
	}
	w.Events = ws.events
	for name := range ws.dirtyTokens {
		if t := ws.tokens[name]; t != nil {
			w.PutTokens = append(w.PutTokens, t)
		}
	}
	for id := range ws.dirtyRequests {
		if r := ws.requests[id]; r != nil && !ws.deletedTenants[r.Tenant] {
			w.PutRequests = append(w.PutRequests, r)
		}
	}
	for id := range ws.dirtyWebhooks {
		if h := ws.webhooks[id]; h != nil {
			w.PutWebhooks = append(w.PutWebhooks, h)
		} else {
			w.DeleteWebhooks = append(w.DeleteWebhooks, id)
		}
	}
	// The outbox: each event for each subscription that wants it.
	if len(ws.webhooks) > 0 {
		hooks := make([]*Webhook, 0, len(ws.webhooks))
		for _, id := range sortedKeys(ws.webhooks) {
			if h := ws.webhooks[id]; h != nil {
				hooks = append(hooks, h)
			}
		}
		for i, e := range ws.events {
			for _, h := range hooks {
				if h.Matches(e) {
					w.Deliveries = append(w.Deliveries, DeliveryRow{Webhook: h.ID, Event: i, Tenant: e.Tenant})
				}
			}
		}
	}
	return w
}

// changedTenants are the tenants whose row, overrides, usage or consumers
// the batch changed.
func (ws *workset) changedTenants() []string {
	set := map[string]bool{}
	for id := range ws.dirtyTenants {
		set[id] = true
	}
	for k := range ws.dirtyUsage {
		set[k[0]] = true
	}
	for k := range ws.dirtyBelow {
		set[k[0]] = true
	}
	for k := range ws.dirtyConsumers {
		set[k.Tenant] = true
	}
	for k := range ws.dirtyQuotas {
		set[k[0]] = true
	}
	for k := range ws.dirtyLimits {
		set[k[0]] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// finish moves the batch's final values into the committer's memory and
// returns the tenants whose version it raised (shared stores), with their
// new versions. Entries of batch stay pinned in the cache until it commits.
func (ws *workset) finish(batch uint64, shared bool) map[string]int64 {
	st := ws.st
	var versions map[string]int64
	if shared {
		versions = map[string]int64{}
	}
	for _, id := range ws.changedTenants() {
		t := ws.tenants[id]
		ts := st.tenants[id]
		switch {
		case t == nil && ts != nil:
			st.cache.forget(ts)
			delete(st.tenants, id)
			st.folded = nil
		case t != nil && ts == nil:
			ts = &tenantState{id: id, t: t, usage: ws.usage[id], below: ws.below[id], complete: true}
			st.tenants[id] = ts
			st.folded = nil
		case t != nil:
			ts.t, ts.usage, ts.below = t, ws.usage[id], ws.below[id]
		}
		if ts != nil && t != nil && shared {
			ts.version++
			versions[id] = ts.version
		}
	}
	for k := range ws.dirtyConsumers {
		if ts := st.tenants[k.Tenant]; ts != nil {
			st.cache.put(ts, k.ID, ws.consumers[k], batch, true)
		}
	}
	if len(ws.dirtyWebhooks) > 0 {
		st.webhooks = map[string]*Webhook{}
		for id, h := range ws.webhooks {
			if h != nil {
				st.webhooks[id] = h
			}
		}
	}
	return versions
}

// The ledger's views of what changed: stable JSON, independent of the API's
// wire types.

type consumerView struct {
	Kind       string           `json:"kind"`
	State      string           `json:"state,omitempty"`
	Attributes map[string]int64 `json:"attributes"`
	Generation int64            `json:"generation"`
	Footprint  Footprint        `json:"footprint"`
	ExpiresAt  *time.Time       `json:"expires_at,omitempty"`
}

type quotaView struct {
	Hard        int64 `json:"hard"`
	Requestable Range `json:"requestable"`
}

type tenantView struct {
	Name   string `json:"name"`
	Plan   string `json:"plan,omitempty"`
	Parent string `json:"parent,omitempty"`
}

// moveView is a tenant's place in the tree: tenant.move events carry it
// before and after.
type moveView struct {
	Parent string `json:"parent"` // "": a root
}

// belowView is what a tenant's descendants use, as usage.subtree events
// carry it.
type belowView struct {
	Below map[string]int64 `json:"below"`
}

type tokenView struct {
	Role   Role   `json:"role"`
	Tenant string `json:"tenant,omitempty"`
}

func viewOf(c *Consumer) any {
	if c == nil {
		return nil
	}
	return consumerView{c.Kind, c.State, c.Attributes, c.Generation, c.Footprint, c.ExpiresAt}
}

func marshalView(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("quota: ledger view does not marshal: " + err.Error()) // views are plain structs
	}
	return b
}
