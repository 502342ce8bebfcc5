package quota

import (
	"context"
	"encoding/json"
	"maps"
	"time"
)

// workset is the state one batch reads and changes, held in memory for the
// length of one transaction. Changes are evaluated in order against it; a
// change that fails (or is a dry run) is undone before the next one runs, so
// each change sees exactly the changes admitted before it.
type workset struct {
	cat *Catalog
	now time.Time

	tenants   map[string]*Tenant // nil: does not exist
	usage     map[string]map[string]int64
	consumers map[ConsumerKey]*Consumer // nil: does not exist
	tokens    map[string]*Token         // nil: does not exist
	counts    map[string]int64          // consumers per tenant, for tenants about to be deleted
	requests  map[string]*Request       // by ID: those named and every pending one of the tenants
	listed    map[string][]*Consumer    // reconcile: a tenant's consumers of the kinds covered
	webhooks  map[string]*Webhook       // every subscription; nil: deleted

	dirtyTenants   map[string]bool
	deletedTenants map[string]bool
	dirtyQuotas    map[[2]string]bool
	dirtyLimits    map[[2]string]bool
	dirtyConsumers map[ConsumerKey]bool
	dirtyUsage     map[[2]string]bool
	dirtyTokens    map[string]bool
	dirtyRequests  map[string]bool
	// touched holds, for the change being run, each tenant resource's usage
	// and hard quota before the change first moved them; newThresholds, the
	// tenants whose thresholds it set. notify compares them with after.
	touched       map[[2]string]usageMark
	newThresholds map[string]bool
	dirtyWebhooks map[string]bool
	events        []*Event

	undo []func()
}

// load locks and reads everything the batch names.
func load(ctx context.Context, tx Tx, cat *Catalog, now time.Time, batch []*request) (*workset, error) {
	tenantSet := map[string]bool{}
	keySet := map[ConsumerKey]bool{}
	tokenSet := map[string]bool{}
	var deleting, requestIDs []string
	var reconciles []Op
	for _, r := range batch {
		for _, op := range r.change.Ops {
			if op.Tenant != "" {
				tenantSet[op.Tenant] = true
			}
			switch op.Type {
			case OpDecide:
				requestIDs = append(requestIDs, op.ID)
			case OpReconcile:
				reconciles = append(reconciles, op)
				for _, item := range op.Inventory {
					keySet[ConsumerKey{op.Tenant, item.ID}] = true
				}
			case OpPutConsumer, OpDeleteConsumer, OpExpireConsumer:
				keySet[ConsumerKey{op.Tenant, op.Consumer}] = true
			case OpPutToken:
				tokenSet[op.Token.Name] = true
			case OpRevokeToken:
				tokenSet[op.Name] = true
			case OpDeleteTenant:
				deleting = append(deleting, op.Tenant)
			}
		}
	}
	ids := sortedKeys(tenantSet)
	tenants, err := tx.LockTenants(ctx, ids)
	if err != nil {
		return nil, err
	}
	usage, err := tx.Usage(ctx, ids)
	if err != nil {
		return nil, err
	}
	var tokens map[string]*Token
	if len(tokenSet) > 0 {
		if tokens, err = tx.Tokens(ctx, sortedKeys(tokenSet)); err != nil {
			return nil, err
		}
	}
	listed := map[string][]*Consumer{}
	for _, op := range reconciles {
		cs, err := tx.TenantConsumers(ctx, op.Tenant, op.Kinds)
		if err != nil {
			return nil, err
		}
		listed[op.Tenant] = cs
		for _, c := range cs {
			keySet[c.Key()] = true
		}
	}
	keys := make([]ConsumerKey, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	consumers, err := tx.Consumers(ctx, keys)
	if err != nil {
		return nil, err
	}
	requests, err := tx.Requests(ctx, ids, requestIDs)
	if err != nil {
		return nil, err
	}
	hooks, err := tx.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	ws := &workset{
		cat: cat, now: now,
		tenants: map[string]*Tenant{}, usage: map[string]map[string]int64{},
		consumers: map[ConsumerKey]*Consumer{}, tokens: map[string]*Token{}, counts: map[string]int64{},
		requests: requests, listed: listed, webhooks: map[string]*Webhook{},
		dirtyTenants: map[string]bool{}, deletedTenants: map[string]bool{},
		dirtyQuotas: map[[2]string]bool{}, dirtyLimits: map[[2]string]bool{},
		dirtyConsumers: map[ConsumerKey]bool{}, dirtyUsage: map[[2]string]bool{}, dirtyTokens: map[string]bool{},
		dirtyRequests: map[string]bool{}, dirtyWebhooks: map[string]bool{},
	}
	for _, h := range hooks {
		ws.webhooks[h.ID] = h
	}
	for _, id := range ids {
		ws.tenants[id] = tenants[id]
		u := usage[id]
		if u == nil {
			u = map[string]int64{}
		}
		ws.usage[id] = u
	}
	for _, k := range keys {
		ws.consumers[k] = consumers[k]
	}
	for name := range tokenSet {
		ws.tokens[name] = tokens[name]
	}
	for _, id := range deleting {
		if tenants[id] != nil {
			if ws.counts[id], err = tx.CountConsumers(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	return ws, nil
}

// run evaluates one change. On any error, or for a dry run, every effect of
// the change is undone before it returns.
func (ws *workset) run(ch Change) (*Result, error) {
	mark, events := len(ws.undo), len(ws.events)
	ws.touched, ws.newThresholds = map[[2]string]usageMark{}, map[string]bool{}
	res := &Result{Ops: make([]OpResult, len(ch.Ops))}
	for i, op := range ch.Ops {
		r, err := ws.apply(ch, op)
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
	u := ws.usage[tenant]
	for r := range delta {
		ws.touch(tenant, r)
		old, had := u[r]
		ws.undo = append(ws.undo, func() {
			if had {
				u[r] = old
			} else {
				delete(u, r)
			}
		})
		ws.dirtyUsage[[2]string{tenant, r}] = true
	}
	ApplyDelta(u, delta)
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

func (ws *workset) event(ch Change, typ EventType, tenant, subject string, before, after any) {
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

func (ws *workset) apply(ch Change, op Op) (OpResult, error) {
	switch op.Type {
	case OpPutConsumer:
		return ws.putConsumer(ch, op)
	case OpDeleteConsumer, OpExpireConsumer:
		return ws.deleteConsumer(ch, op)
	case OpSetQuota:
		return ws.setQuota(ch, op)
	case OpSetLimit:
		return ws.setLimit(ch, op)
	case OpCreateTenant:
		return ws.createTenant(ch, op)
	case OpUpdateTenant:
		return ws.updateTenant(ch, op)
	case OpDeleteTenant:
		return ws.deleteTenant(ch, op)
	case OpPutToken:
		return ws.putToken(ch, op)
	case OpRevokeToken:
		return ws.revokeToken(ch, op)
	case OpRequest:
		return ws.request(ch, op)
	case OpDecide:
		return ws.decide(ch, op)
	case OpReconcile:
		return ws.reconcile(ch, op)
	case OpPutWebhook:
		return ws.putWebhook(ch, op)
	case OpDeleteWebhook:
		return ws.deleteWebhook(ch, op)
	case OpSetThresholds:
		return ws.setThresholds(ch, op)
	}
	return OpResult{}, Errorf(CodeInvalid, "unknown operation %q", op.Type)
}

func (ws *workset) putConsumer(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	key := ConsumerKey{op.Tenant, op.Consumer}
	old := ws.releaseIfExpired(key)
	if op.IfMatch != 0 && (old == nil || old.Generation != op.IfMatch) {
		return OpResult{}, Errorf(CodeGenerationMismatch, "consumer %s is not at generation %d", op.Consumer, op.IfMatch)
	}
	k, attrs := op.kind, op.Spec.Attributes
	if old != nil && old.Kind != k.Name {
		return OpResult{}, Errorf(CodeConflict, "consumer %s is a %s, not a %s: its kind cannot change", op.Consumer, old.Kind, k.Name)
	}
	// Only attributes that change are held to the current limits, so that a
	// lowered limit never blocks stopping or deleting what exists.
	changed := attrs
	if old != nil {
		changed = map[string]int64{}
		for a, v := range attrs {
			if ov, ok := old.Attributes[a]; !ok || ov != v {
				changed[a] = v
			}
		}
	}
	if err := ws.cat.CheckLimits(t, k, changed); err != nil && !op.force {
		return OpResult{}, err
	}
	fp, err := FootprintOf(k, op.Spec.State, attrs)
	if err != nil {
		return OpResult{}, err
	}
	var oldFP Footprint
	var exp *time.Time
	if op.Spec.TTL > 0 {
		at := ws.now.Add(op.Spec.TTL).UTC()
		exp = &at
	}
	if old != nil {
		oldFP = old.Footprint
		if old.sameAs(k.Name, op.Spec.State, attrs, exp) {
			return OpResult{Consumer: old, Usage: ws.usageOf(op.Tenant)}, nil
		}
	}
	delta := Delta(oldFP, fp)
	if op.force {
		if err := checkOverflow(ws.usage[op.Tenant], delta); err != nil {
			return OpResult{}, err
		}
	} else if err := ws.cat.CheckQuotas(t, ws.usage[op.Tenant], delta); err != nil {
		return OpResult{}, err
	}
	c := &Consumer{
		Tenant: op.Tenant, ID: op.Consumer, Kind: k.Name, State: op.Spec.State, Attributes: attrs,
		Generation: 1, Footprint: fp, ExpiresAt: exp, CreatedAt: ws.now, UpdatedAt: ws.now,
	}
	if old != nil {
		c.Generation, c.CreatedAt = old.Generation+1, old.CreatedAt
	}
	ws.setConsumer(key, c)
	ws.addUsage(op.Tenant, delta)
	ws.countConsumer(op.Tenant, old == nil, 1)
	ws.event(ch, EventConsumerPut, op.Tenant, op.Consumer, viewOf(old), viewOf(c))
	return OpResult{Consumer: c, Created: old == nil, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

func (ws *workset) deleteConsumer(ch Change, op Op) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		if op.Type == OpExpireConsumer {
			return OpResult{}, nil
		}
		return OpResult{}, err
	}
	key := ConsumerKey{op.Tenant, op.Consumer}
	old := ws.consumers[key]
	typ := EventConsumerDelete
	if op.Type != OpExpireConsumer {
		old = ws.releaseIfExpired(key)
	}
	if op.Type == OpExpireConsumer {
		// Another process may have released it, or it was confirmed or renewed.
		if old == nil || old.Generation != op.Generation || old.ExpiresAt == nil || old.ExpiresAt.After(ws.now) {
			return OpResult{}, nil
		}
		typ = EventConsumerExpired
	} else {
		if old == nil {
			return OpResult{}, Errorf(CodeNotFound, "consumer %q not found", op.Consumer)
		}
		if op.IfMatch != 0 && old.Generation != op.IfMatch {
			return OpResult{}, Errorf(CodeGenerationMismatch, "consumer %s is not at generation %d", op.Consumer, op.IfMatch)
		}
	}
	ws.setConsumer(key, nil)
	ws.addUsage(op.Tenant, Delta(old.Footprint, nil))
	ws.countConsumer(op.Tenant, true, -1)
	ws.event(ch, typ, op.Tenant, op.Consumer, viewOf(old), nil)
	return OpResult{Consumer: old, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

// releaseIfExpired returns the consumer at key, first releasing it if it
// is a reservation whose time ran out: expiry is decided by the
// reservation's time, never by when the sweeper last ran, so an expired
// reservation can be neither confirmed nor renewed.
func (ws *workset) releaseIfExpired(key ConsumerKey) *Consumer {
	c := ws.consumers[key]
	if c == nil || c.ExpiresAt == nil || c.ExpiresAt.After(ws.now) {
		return c
	}
	ws.setConsumer(key, nil)
	ws.addUsage(key.Tenant, Delta(c.Footprint, nil))
	ws.countConsumer(key.Tenant, true, -1)
	ws.event(Change{Actor: Actor{Name: "allot", Role: RoleSystem}, Reason: "expired"}, EventConsumerExpired, key.Tenant, key.ID, viewOf(c), nil)
	return nil
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

func (ws *workset) setQuota(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	res := ws.cat.Resource(op.Resource)
	before := quotaView{ws.cat.Hard(t, res), ws.cat.Requestable(t, res)}
	ws.touch(op.Tenant, op.Resource)
	nt := cloneTenant(t)
	o := nt.Quotas[op.Resource]
	o.Hard = op.Quota.Hard
	if op.Quota.Requestable != nil {
		o.Requestable = op.Quota.Requestable
	}
	nt.Quotas[op.Resource] = o
	ws.setTenant(op.Tenant, nt)
	ws.dirtyQuotas[[2]string{op.Tenant, op.Resource}] = true
	after := quotaView{ws.cat.Hard(nt, res), ws.cat.Requestable(nt, res)}
	ws.event(ch, EventQuotaSet, op.Tenant, op.Resource, before, after)
	used := ws.usage[op.Tenant][op.Resource]
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant), OverQuota: used > after.Hard}, nil
}

func (ws *workset) setLimit(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	k := ws.cat.Kind(op.Kind)
	key := LimitKey(op.Kind, op.Limit)
	before := ws.cat.Limit(t, k, k.LimitDef(op.Limit))
	nt := cloneTenant(t)
	nt.Limits[key] = op.Range
	ws.setTenant(op.Tenant, nt)
	ws.dirtyLimits[[2]string{op.Tenant, key}] = true
	ws.event(ch, EventLimitSet, op.Tenant, key, before, op.Range)
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

func (ws *workset) createTenant(ch Change, op Op) (OpResult, error) {
	if ws.tenants[op.Tenant] != nil {
		return OpResult{}, Errorf(CodeConflict, "tenant %q exists already", op.Tenant)
	}
	t := &Tenant{ID: op.Tenant, Name: op.Name, Plan: op.Plan, CreatedAt: ws.now,
		Quotas: map[string]QuotaOverride{}, Limits: map[string]Range{}}
	ws.setTenant(op.Tenant, t)
	ws.event(ch, EventTenantCreate, op.Tenant, op.Tenant, nil, tenantView{t.Name, t.Plan})
	return OpResult{Tenant: t, Created: true, Changed: true, Usage: map[string]int64{}}, nil
}

// updateTenant renames a tenant or moves it to another plan. Its usage
// is kept even where the new plan's quotas are lower: like a lowered
// quota, that refuses growth, never what exists.
func (ws *workset) updateTenant(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	nt := cloneTenant(t)
	if op.Name != "" {
		nt.Name = op.Name
	}
	switch op.Plan {
	case "":
	case "-":
		nt.Plan = ""
	default:
		nt.Plan = op.Plan
	}
	if nt.Name == t.Name && nt.Plan == t.Plan {
		return OpResult{Tenant: t, Usage: ws.usageOf(op.Tenant)}, nil
	}
	for _, res := range ws.cat.Resources {
		if ws.cat.Hard(nt, res) != ws.cat.Hard(t, res) {
			ws.touch(op.Tenant, res.Name)
		}
	}
	ws.setTenant(op.Tenant, nt)
	ws.event(ch, EventTenantUpdate, op.Tenant, op.Tenant, tenantView{t.Name, t.Plan}, tenantView{nt.Name, nt.Plan})
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

func (ws *workset) deleteTenant(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	if n := ws.counts[op.Tenant]; n > 0 {
		return OpResult{}, Errorf(CodeConflict, "tenant %q still owns %d consumers; delete them first", op.Tenant, n)
	}
	ws.setTenant(op.Tenant, nil)
	ws.deletedTenants[op.Tenant] = true
	ws.undo = append(ws.undo, func() { delete(ws.deletedTenants, op.Tenant) })
	ws.event(ch, EventTenantDelete, op.Tenant, op.Tenant, tenantView{t.Name, t.Plan}, nil)
	return OpResult{Tenant: t, Changed: true}, nil
}

func (ws *workset) putToken(ch Change, op Op) (OpResult, error) {
	tok := op.Token
	if old := ws.tokens[tok.Name]; old != nil && !op.Replace {
		return OpResult{}, Errorf(CodeConflict, "a token named %q exists already", tok.Name)
	}
	if tok.Role == RoleTenant {
		if _, err := ws.tenant(tok.Tenant); err != nil {
			return OpResult{}, err
		}
	}
	t := *tok
	t.CreatedAt = ws.now
	ws.setToken(tok.Name, &t)
	ws.event(ch, EventTokenCreate, tok.Tenant, tok.Name, nil, tokenView{t.Role, t.Tenant})
	return OpResult{Changed: true}, nil
}

func (ws *workset) revokeToken(ch Change, op Op) (OpResult, error) {
	old := ws.tokens[op.Name]
	if old == nil {
		return OpResult{}, Errorf(CodeNotFound, "token %q not found", op.Name)
	}
	if old.RevokedAt != nil {
		return OpResult{}, nil
	}
	t := *old
	now := ws.now
	t.RevokedAt = &now
	ws.setToken(op.Name, &t)
	ws.event(ch, EventTokenRevoke, t.Tenant, t.Name, tokenView{t.Role, t.Tenant}, nil)
	return OpResult{Changed: true}, nil
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
	return w
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
	Name string `json:"name"`
	Plan string `json:"plan,omitempty"`
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
