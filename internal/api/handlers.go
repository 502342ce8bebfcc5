package api

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

// maxTTL bounds reservations: long enough for any provisioning workflow,
// short enough that seconds never overflow a time.Duration.
const maxTTL = 366 * 24 * time.Hour

// do runs the change of a write route. With ?dry_run=true the change is
// evaluated and answered exactly as it would be, and nothing is stored;
// the answer then carries Allot-Dry-Run: true.
func (a *API) do(w http.ResponseWriter, r *http.Request, who quota.Actor, reason string, ops ...quota.Op) (*quota.Result, bool, error) {
	dry, err := queryBool(r, dryRun)
	if err != nil {
		return nil, false, err
	}
	res, err := a.engine.Do(r.Context(), quota.Change{Actor: who, DryRun: dry, Reason: reason, Ops: ops})
	if err == nil && dry {
		w.Header().Set("Allot-Dry-Run", "true")
	}
	return res, dry, err
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateTenantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = req.ID
	}
	res, _, err := a.do(w, r, who, "", &quota.CreateTenant{Tenant: req.ID, Name: req.Name, Plan: req.Plan, Parent: req.Parent})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/tenants/"+res.Ops[0].Tenant.ID)
	respond(w, http.StatusCreated, wireTenant(res.Ops[0].Tenant))
	return nil
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	vs := a.engine.Views()
	out := client.TenantList{Tenants: make([]client.Tenant, 0, len(vs))}
	for _, v := range vs {
		out.Tenants = append(out.Tenants, wireTenant(v.Tenant))
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	v, err := a.engine.View(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, wireTenant(v.Tenant))
	return nil
}

// updateTenant renames a tenant, moves it to another plan, or moves it
// (with its subtree) under another parent.
func (a *API) updateTenant(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.UpdateTenantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	op := &quota.UpdateTenant{Tenant: r.PathValue("tenant")}
	if req.Name != nil {
		if *req.Name == "" {
			return quota.Errorf(quota.CodeInvalid, "name must not be empty")
		}
		op.Name = *req.Name
	}
	if req.Plan != nil {
		op.Plan = *req.Plan
		if op.Plan == "" {
			op.Plan = "-" // no plan: the catalog's defaults
		}
	}
	if req.Parent.Set {
		op.SetParent, op.Parent = true, req.Parent.ID
	}
	res, _, err := a.do(w, r, who, "", op)
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, wireTenant(res.Ops[0].Tenant))
	return nil
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	if _, _, err := a.do(w, r, who, "", &quota.DeleteTenant{Tenant: r.PathValue("tenant")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getQuotas(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	path, err := a.engine.Path(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, tenantQuotas(a.cat, a.region, path))
	return nil
}

// getTree lists a tenant's subtree with usage. A tenant token reads the
// tree of its own tenant or of a tenant below it (its tenant is on the
// path), never that of an ancestor, whose other children it must not see.
func (a *API) getTree(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	tenant := r.PathValue("tenant")
	if who.Role == quota.RoleTenant {
		path, err := a.engine.Path(r.Context(), tenant)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(path, func(v *quota.TenantView) bool { return quota.SameTenant(v.Tenant.ID, who.Tenant) }) {
			return quota.Errorf(quota.CodeNotFound, "tenant %q not found", truncate(tenant, 130))
		}
	}
	nodes, err := a.engine.Subtree(r.Context(), tenant)
	if err != nil {
		return err
	}
	out := client.Tree{Tenant: tenant, Region: a.region, Nodes: make([]client.TreeNode, len(nodes))}
	for i, n := range nodes {
		t := n.View.Tenant
		node := client.TreeNode{ID: t.ID, Name: t.Name, Depth: n.Depth, Resources: make([]client.TreeResource, 0, len(a.cat.Resources))}
		if n.Depth > 0 {
			node.Parent = t.Parent
		}
		for _, res := range a.cat.Resources {
			hard, set := a.cat.SetHard(t, res)
			if !set {
				hard = a.cat.Hard(t, res)
			}
			used := n.View.Usage[res.Name]
			node.Resources = append(node.Resources, client.TreeResource{Resource: res.Name, Used: used, Tree: n.View.Tree(res.Name),
				Hard: hard, Set: set, OverQuota: used > a.cat.Hard(t, res) || a.cat.TreeOver(n.View, res)})
		}
		out.Nodes[i] = node
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) setQuota(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.SetQuotaRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	op := &quota.SetQuota{Tenant: r.PathValue("tenant"), Resource: r.PathValue("resource")}
	op.Quota.Hard = req.Hard
	if req.Requestable != nil {
		op.Quota.Requestable = &quota.Range{Min: req.Requestable.Min, Max: req.Requestable.Max}
	}
	res, _, err := a.do(w, r, who, "", op)
	if err != nil {
		return err
	}
	o := res.Ops[0]
	rq := wireUse(a.cat, o.Tenant, a.cat.Use(o.Tenant, a.cat.Resource(op.Resource), o.Usage))
	if path, err := a.engine.Path(r.Context(), o.Tenant.ID); err == nil && !r.URL.Query().Has(dryRun) {
		rq = pathUse(a.cat, path, a.cat.Resource(op.Resource))
	}
	respond(w, http.StatusOK, rq)
	return nil
}

func (a *API) setLimit(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.SetLimitRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Min == nil || req.Max == nil {
		return quota.Errorf(quota.CodeInvalid, "min and max are required")
	}
	op := &quota.SetLimit{Tenant: r.PathValue("tenant"), Kind: r.PathValue("kind"), Limit: r.PathValue("limit"),
		Range: quota.Range{Min: *req.Min, Max: *req.Max}}
	if _, _, err := a.do(w, r, who, "", op); err != nil {
		return err
	}
	respond(w, http.StatusOK, client.Limit{Kind: op.Kind, Limit: op.Limit, Min: op.Range.Min, Max: op.Range.Max})
	return nil
}

func (a *API) putConsumer(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.PutConsumerRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	gen, err := ifMatch(r)
	if err != nil {
		return err
	}
	op, err := putOp(r.PathValue("tenant"), r.PathValue("consumer"), req.Kind, req.State, req.Attributes, req.TTLSeconds)
	if err != nil {
		return err
	}
	op.IfMatch = gen
	res, dryRun, err := a.do(w, r, who, "", op)
	if err != nil {
		return err
	}
	o := res.Ops[0]
	status := http.StatusOK
	if o.Created {
		status = http.StatusCreated
	}
	w.Header().Set("ETag", etag(o.Consumer.Generation))
	respond(w, status, writeAnswer(o, dryRun))
	return nil
}

func putOp(tenant, consumer, kind, state string, attrs map[string]int64, ttlSeconds int64) (*quota.PutConsumer, error) {
	if ttlSeconds < 0 || ttlSeconds > int64(maxTTL/time.Second) { // compared in seconds: no overflow
		return nil, quota.Errorf(quota.CodeInvalid, "ttl_seconds must be from 0 to %d", int64(maxTTL/time.Second))
	}
	return &quota.PutConsumer{Tenant: tenant, Consumer: consumer, Spec: quota.Spec{
		Kind: kind, State: state, Attributes: attrs, TTL: time.Duration(ttlSeconds) * time.Second,
	}}, nil
}

func (a *API) getConsumer(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	c, err := a.store.Consumer(r.Context(), r.PathValue("tenant"), r.PathValue("consumer"))
	if err != nil {
		return err
	}
	if a.expired(c) {
		return quota.Errorf(quota.CodeNotFound, "consumer %q not found: its reservation expired at %s", c.ID, c.ExpiresAt.Format(time.RFC3339))
	}
	w.Header().Set("ETag", etag(c.Generation))
	respond(w, http.StatusOK, wireConsumer(c))
	return nil
}

func (a *API) listConsumers(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	tenant := r.PathValue("tenant")
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	f := quota.ConsumerFilter{Tenant: tenant, Kind: r.URL.Query().Get("kind"), State: r.URL.Query().Get("state"), Limit: int(limit) + 1}
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || !quota.ValidID(string(after)) {
			return quota.Errorf(quota.CodeInvalid, "cursor is not one this API handed out")
		}
		f.After = string(after)
	}
	if f.Kind != "" && a.cat.Kind(f.Kind) == nil {
		return quota.Errorf(quota.CodeInvalid, "unknown kind %q", truncate(f.Kind, 130))
	}
	// An unknown tenant is a 404, not an empty list.
	if _, err := a.engine.View(r.Context(), tenant); err != nil {
		return err
	}
	cs, err := a.store.Consumers(r.Context(), f)
	if err != nil {
		return err
	}
	out := client.ConsumerList{Consumers: make([]client.Consumer, 0, len(cs))}
	if len(cs) > int(limit) {
		cs = cs[:limit]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(cs[len(cs)-1].ID))
	}
	for _, c := range cs {
		if !a.expired(c) {
			out.Consumers = append(out.Consumers, wireConsumer(c))
		}
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteConsumer(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	gen, err := ifMatch(r)
	if err != nil {
		return err
	}
	op := &quota.DeleteConsumer{Tenant: r.PathValue("tenant"), Consumer: r.PathValue("consumer"), IfMatch: gen}
	if _, _, err := a.do(w, r, who, "", op); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) claims(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.ClaimsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Operations) > quota.MaxOps {
		return quota.Errorf(quota.CodeInvalid, "%d operations; at most %d are allowed in one batch", len(req.Operations), quota.MaxOps)
	}
	ops := make([]quota.Op, len(req.Operations))
	for i, o := range req.Operations {
		var err error
		switch o.Op {
		case "put":
			var put *quota.PutConsumer
			if put, err = putOp(o.Tenant, o.Consumer, o.Kind, o.State, o.Attributes, o.TTLSeconds); err == nil {
				put.IfMatch = o.IfMatch
				ops[i] = put
			}
		case "delete":
			if o.Kind != "" || o.State != "" || o.Attributes != nil || o.TTLSeconds != 0 {
				err = quota.Errorf(quota.CodeInvalid, "a delete takes only tenant, consumer and if_match")
			}
			ops[i] = &quota.DeleteConsumer{Tenant: o.Tenant, Consumer: o.Consumer, IfMatch: o.IfMatch}
		default:
			err = quota.Errorf(quota.CodeInvalid, `op must be "put" or "delete", not %q`, truncate(o.Op, 20))
		}
		if err == nil && o.IfMatch < 0 {
			err = quota.Errorf(quota.CodeInvalid, "if_match must be a positive generation")
		}
		if err != nil {
			qe := err.(*quota.Error)
			qe.Operation = &i
			return qe
		}
	}
	queryDry, err := queryBool(r, dryRun)
	if err != nil {
		return err
	}
	dry := req.DryRun || queryDry // either asks for a dry run
	res, err := a.engine.Do(r.Context(), quota.Change{Actor: who, DryRun: dry, Ops: ops})
	if err != nil {
		return err
	}
	if dry {
		w.Header().Set("Allot-Dry-Run", "true")
	}
	out := client.ClaimsResponse{Results: make([]client.Consumer, len(ops)), DryRun: dry}
	for i, o := range res.Ops {
		out.Results[i] = writeAnswer(o, dry)
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !quota.Role(req.Role).Valid() {
		return quota.Errorf(quota.CodeInvalid, "role must be admin, service or tenant")
	}
	if err := quota.CheckID("token name", req.Name); err != nil {
		return err
	}
	if strings.Contains(req.Name, ":") {
		return quota.Errorf(quota.CodeInvalid, "a token name has no colon: the token is base64 of name:secret")
	}
	secret, hash, err := auth.New(req.Name)
	if err != nil {
		return err
	}
	tok := &quota.Token{Name: req.Name, Role: quota.Role(req.Role), Tenant: req.Tenant, Hash: hash}
	_, dry, err := a.do(w, r, who, "", &quota.PutToken{Token: tok})
	if err != nil {
		return err
	}
	tok.CreatedAt = a.now()
	out := wireToken(tok)
	if !dry { // a dry run stores nothing, so it hands out no secret
		out.Secret = secret
	}
	respond(w, http.StatusCreated, out)
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	ts, err := a.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := client.TokenList{Tokens: make([]client.Token, 0, len(ts))}
	for _, t := range ts {
		if t.Sealed == nil { // access keys are listed per tenant, as credentials
			out.Tokens = append(out.Tokens, wireToken(t))
		}
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	if _, _, err := a.do(w, r, who, "", &quota.RevokeToken{Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listEvents pages through the ledger. A tenant sees only its own events,
// and only those of its own lifetime.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	tenant, err := eventScope(r, who)
	if err != nil {
		return err
	}
	audit, err := queryBool(r, "audit")
	if err != nil {
		return err
	}
	from, err := a.ledgerStart(r, who, tenant, after, audit)
	if err != nil {
		return err
	}
	es, err := a.store.Events(r.Context(), quota.EventFilter{Tenant: tenant, After: from, Limit: int(limit)})
	if err != nil {
		return err
	}
	out := client.EventList{Events: make([]client.Event, 0, len(es)), Next: after}
	for _, e := range es {
		out.Events = append(out.Events, wireEvent(e))
		out.Next = e.Seq
	}
	respond(w, http.StatusOK, out)
	return nil
}

// ledgerStart is where a caller's reading of the ledger starts, after
// pruning: a reader that named a position pruning has passed is refused,
// since the events after it are not all there any more and it must not skip
// them without knowing; one that named none starts at the oldest position
// kept. With audit, a reader accepts that below the horizon only audit
// events remain, and reads those.
func (a *API) ledgerStart(r *http.Request, who quota.Actor, tenant string, after int64, audit bool) (int64, error) {
	from, err := a.historyStart(r, who, tenant, after)
	if err != nil {
		return 0, err
	}
	h, err := a.store.Horizon(r.Context())
	if err != nil {
		return 0, err
	}
	kept := h.Seq
	if audit {
		kept = h.AuditSeq
	}
	if !r.URL.Query().Has("after") && r.Header.Get("Last-Event-ID") == "" {
		return max(from, kept), nil
	}
	if from < kept && audit {
		return 0, quota.Errorf(quota.CodeEventsPruned, "audit events up to %d are pruned; read after=%d", kept, kept)
	}
	if from < kept {
		return 0, quota.Errorf(quota.CodeEventsPruned, "events up to %d are pruned (the ledger is kept from %s on); read after=%d, or with audit=true for the audit events kept before it",
			kept, h.Time.UTC().Format(time.RFC3339), kept)
	}
	return from, nil
}

// historyStart is where a caller's reading of the ledger starts: after,
// and for a tenant never before its own creation, so that a tenant created
// again under an old id sees nothing of the previous owner's history.
// Operators read every event of an id, across its owners: that is audit.
func (a *API) historyStart(r *http.Request, who quota.Actor, tenant string, after int64) (int64, error) {
	if who.Role != quota.RoleTenant {
		return after, nil
	}
	t, err := a.store.Tenant(r.Context(), tenant)
	if err != nil {
		return 0, err
	}
	return max(after, t.CreatedSeq-1), nil
}

// eventScope is the tenant whose events a caller reads: ?tenant= for
// operators (empty for all), always its own for a tenant.
func eventScope(r *http.Request, who quota.Actor) (string, error) {
	tenant := quota.CanonicalTenant(r.URL.Query().Get("tenant"))
	if who.Role == quota.RoleTenant {
		if tenant != "" && !quota.SameTenant(tenant, who.Tenant) {
			return "", quota.Errorf(quota.CodeNotFound, "tenant %q not found", truncate(tenant, 130))
		}
		return who.Tenant, nil
	}
	if tenant != "" {
		if err := quota.CheckID("tenant", tenant); err != nil {
			return "", err
		}
	}
	return tenant, nil
}

// expired reports whether c is a reservation whose time ran out: it holds
// nothing any more, whether or not the sweeper has released it yet.
func (a *API) expired(c *quota.Consumer) bool {
	return c.ExpiresAt != nil && !c.ExpiresAt.After(a.now())
}

func wireEvent(e *quota.Event) client.Event {
	return client.Event{Seq: e.Seq, Time: e.Time.UTC(), Type: string(e.Type), Tenant: e.Tenant,
		Subject: e.Subject, Actor: e.Actor, Role: string(e.Role), Reason: e.Reason, Before: e.Before, After: e.After}
}

func wireTenant(t *quota.Tenant) client.Tenant {
	return client.Tenant{ID: t.ID, Name: t.Name, Plan: t.Plan, Parent: t.Parent, CreatedAt: t.CreatedAt.UTC()}
}

func wireToken(t *quota.Token) client.Token {
	return client.Token{Name: t.Name, Role: string(t.Role), Tenant: t.Tenant, CreatedAt: t.CreatedAt.UTC(), RevokedAt: t.RevokedAt}
}

func wireConsumer(c *quota.Consumer) client.Consumer {
	return client.Consumer{
		Tenant: c.Tenant, Consumer: c.ID, Kind: c.Kind, State: c.State, Attributes: c.Attributes,
		Generation: c.Generation, Footprint: c.Footprint, ExpiresAt: c.ExpiresAt,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

// writeAnswer is the answer to a consumer write: the consumer (as it is
// after a put, as it was before a delete) and the tenant's usage after.
func writeAnswer(o quota.OpResult, dryRun bool) client.Consumer {
	var c client.Consumer
	if o.Consumer != nil {
		c = wireConsumer(o.Consumer)
	}
	c.Usage, c.Created, c.DryRun = o.Usage, o.Created, dryRun
	if c.Usage == nil {
		c.Usage = map[string]int64{}
	}
	return c
}
