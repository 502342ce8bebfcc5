package api

import (
	"cmp"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/webhook"
)

// Quota lifecycle: requests for a new hard quota, reconciliation with the
// real inventory, warning thresholds and webhooks.

func (a *API) createRequest(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateRequestRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return quota.Errorf(quota.CodeInvalid, "value is required")
	}
	res, _, err := a.do(w, r, who, req.Reason, quota.Op{
		Type: quota.OpRequest, Tenant: r.PathValue("tenant"), Resource: req.Resource, Value: *req.Value,
	})
	if err != nil {
		return err
	}
	o := res.Ops[0]
	status := http.StatusOK // the same open request again
	if o.Created {
		status = http.StatusCreated
	}
	respond(w, status, wireRequest(o.Request))
	return nil
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	status := r.URL.Query().Get("status")
	switch quota.RequestStatus(status) {
	case "", quota.RequestPending, quota.RequestApproved, quota.RequestDenied, quota.RequestSuperseded:
	default:
		return quota.Errorf(quota.CodeInvalid, "status must be pending, approved, denied or superseded")
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	tenant := r.PathValue("tenant")
	if tenant != "" {
		if _, err := a.store.Tenant(r.Context(), tenant); err != nil {
			return err
		}
	}
	rs, err := a.store.Requests(r.Context(), quota.RequestFilter{Tenant: tenant, Status: status, Limit: int(limit)})
	if err != nil {
		return err
	}
	out := client.RequestList{Requests: make([]client.Request, 0, len(rs))}
	for _, x := range rs {
		out.Requests = append(out.Requests, wireRequest(x))
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) getRequest(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	x, err := a.store.Request(r.Context(), r.PathValue("tenant"), r.PathValue("id"))
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, wireRequest(x))
	return nil
}

func (a *API) approveRequest(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	return a.decide(w, r, who, true)
}

func (a *API) denyRequest(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	return a.decide(w, r, who, false)
}

func (a *API) decide(w http.ResponseWriter, r *http.Request, who quota.Actor, approve bool) error {
	var req client.DecideRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	res, _, err := a.do(w, r, who, "", quota.Op{Type: quota.OpDecide, Tenant: r.PathValue("tenant"), ID: r.PathValue("id"),
		Approve: approve, Comment: req.Comment})
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, wireRequest(res.Ops[0].Request))
	return nil
}

func wireRequest(x *quota.Request) client.Request {
	out := client.Request{ID: x.ID, Tenant: x.Tenant, Resource: x.Resource, Value: x.Value, Reason: x.Reason,
		Status: string(x.Status), RequestedBy: x.RequestedBy, CreatedAt: x.CreatedAt.UTC(), UpdatedAt: x.UpdatedAt.UTC(),
		History: make([]client.RequestStep, len(x.History))}
	for i, s := range x.History {
		out.History[i] = client.RequestStep{Time: s.Time.UTC(), Actor: s.Actor, Status: string(s.Status), Comment: s.Comment}
	}
	return out
}

// putInventory reconciles a tenant's consumers with what really exists.
func (a *API) putInventory(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.Inventory
	if err := decode(r, &req); err != nil {
		return err
	}
	op := quota.Op{Type: quota.OpReconcile, Tenant: r.PathValue("tenant"), Kinds: req.Kinds,
		Inventory: make([]quota.InventoryItem, len(req.Consumers))}
	for i, c := range req.Consumers {
		op.Inventory[i] = quota.InventoryItem{ID: c.Consumer, Spec: quota.Spec{Kind: c.Kind, State: c.State, Attributes: c.Attributes}}
	}
	res, dryRun, err := a.do(w, r, who, "", op)
	if err != nil {
		return err
	}
	o := res.Ops[0]
	out := client.Reconciliation{Tenant: op.Tenant, Created: orEmpty(o.Reconcile.Created), Updated: orEmpty(o.Reconcile.Updated),
		Deleted: orEmpty(o.Reconcile.Deleted), Usage: o.Usage, DryRun: dryRun}
	respond(w, http.StatusOK, out)
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// overQuota lists tenants whose usage exceeds a hard quota, most over first.
func (a *API) overQuota(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	ts, err := a.store.Tenants(r.Context())
	if err != nil {
		return err
	}
	usage, err := a.store.AllUsage(r.Context())
	if err != nil {
		return err
	}
	out := client.OverQuotaList{Tenants: []client.OverQuotaTenant{}}
	for _, t := range ts {
		var over []client.OverQuotaResource
		for _, res := range a.cat.Resources {
			if used, hard := usage[t.ID][res.Name], a.cat.Hard(t, res); used > hard {
				over = append(over, client.OverQuotaResource{Resource: res.Name, Used: used, Hard: hard, Over: used - hard})
			}
		}
		if over != nil {
			out.Tenants = append(out.Tenants, client.OverQuotaTenant{Tenant: t.ID, Resources: over})
		}
	}
	worst := func(t client.OverQuotaTenant) int64 {
		return slices.MaxFunc(t.Resources, func(a, b client.OverQuotaResource) int { return cmp.Compare(a.Over, b.Over) }).Over
	}
	slices.SortStableFunc(out.Tenants, func(x, y client.OverQuotaTenant) int { return cmp.Compare(worst(y), worst(x)) })
	respond(w, http.StatusOK, out)
	return nil
}

// utilisation ranks tenants by their highest utilisation, over-quota ones
// first, from two reads (tenants, and everyone's usage).
func (a *API) utilisation(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	limit, err := queryInt(r, "limit", 100, 1, 10000)
	if err != nil {
		return err
	}
	search := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	if len(search) > 256 {
		return quota.Errorf(quota.CodeInvalid, "q is longer than 256 bytes")
	}
	ts, err := a.store.Tenants(r.Context())
	if err != nil {
		return err
	}
	usage, err := a.store.AllUsage(r.Context())
	if err != nil {
		return err
	}
	type ranked struct {
		client.TenantUtilisation
		ratio float64
	}
	var rows []ranked
	for _, t := range ts {
		if search != "" && !strings.Contains(strings.ToLower(t.ID), search) && !strings.Contains(strings.ToLower(t.Name), search) {
			continue
		}
		row := ranked{TenantUtilisation: client.TenantUtilisation{Tenant: wireTenant(t), Over: []string{}, Thresholds: a.cat.TenantThresholds(t)}, ratio: -1}
		for _, res := range a.cat.Resources {
			rq := resourceQuota(a.cat, t, res, usage[t.ID])
			ratio := 0.0
			switch {
			case rq.Hard > 0:
				ratio = float64(rq.Used) / float64(rq.Hard)
			case rq.Used > 0:
				ratio = math.Inf(1)
			}
			if ratio > row.ratio {
				row.Worst, row.ratio = rq, ratio
			}
			if rq.OverQuota {
				row.Over = append(row.Over, res.Name)
			}
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(x, y ranked) int {
		return cmp.Or(cmp.Compare(min(len(y.Over), 1), min(len(x.Over), 1)), cmp.Compare(y.ratio, x.ratio), strings.Compare(x.Tenant.ID, y.Tenant.ID))
	})
	out := client.Utilisation{Tenants: []client.TenantUtilisation{}, Total: len(rows)}
	for _, row := range rows[:min(len(rows), int(limit))] {
		out.Tenants = append(out.Tenants, row.TenantUtilisation)
	}
	respond(w, http.StatusOK, out)
	return nil
}

// Times a query may name: the ledger's times are unix nanoseconds.
var (
	earliestTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// maxHistorySpan bounds one usage history request.
const maxHistorySpan = 400 * 24 * time.Hour

// maxReplay bounds the ledger events one request may replay.
const maxReplay = 200_000

// usageAt rebuilds a tenant's usage and hard quotas at a past moment from
// the ledger.
func (a *API) usageAt(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	at := a.now().UTC()
	if s := r.URL.Query().Get("at"); s != "" {
		var err error
		if at, err = parseTime("at", s); err != nil {
			return err
		}
	}
	points, err := a.history(r, r.PathValue("tenant"), []time.Time{at})
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, points[0])
	return nil
}

// usageHistory answers usage at evenly spaced moments, replaying the
// ledger once for all of them.
func (a *API) usageHistory(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		return quota.Errorf(quota.CodeInvalid, "from and to are required")
	}
	from, err := parseTime("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseTime("to", q.Get("to"))
	if err != nil {
		return err
	}
	if !to.After(from) {
		return quota.Errorf(quota.CodeInvalid, "to must be after from")
	}
	if to.Sub(from) > maxHistorySpan {
		return quota.Errorf(quota.CodeInvalid, "from and to may be at most %d days apart", int(maxHistorySpan/(24*time.Hour)))
	}
	n, err := queryInt(r, "points", 24, 2, 500)
	if err != nil {
		return err
	}
	moments := make([]time.Time, n)
	span := to.Sub(from)
	for i := range moments {
		moments[i] = from.Add(span / time.Duration(n-1) * time.Duration(i))
	}
	moments[n-1] = to
	points, err := a.history(r, r.PathValue("tenant"), moments)
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.UsageHistory{Tenant: r.PathValue("tenant"), Points: points})
	return nil
}

func parseTime(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, quota.Errorf(quota.CodeInvalid, "%s must be an RFC 3339 time, such as 2026-11-24T09:30:00Z", name)
	}
	if t.Before(earliestTime) || !t.Before(latestTime) {
		return time.Time{}, quota.Errorf(quota.CodeInvalid, "%s must be from 1970-01-01T00:00:00Z to before 2262-01-01T00:00:00Z", name)
	}
	return t.UTC(), nil
}

// history replays the tenant's ledger, from the tenant's creation on, once
// and snapshots its usage and hard quotas at each moment (ascending).
func (a *API) history(r *http.Request, tenant string, moments []time.Time) ([]client.UsageAt, error) {
	t, err := a.store.Tenant(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	replay := quota.NewReplay()
	out := make([]client.UsageAt, 0, len(moments))
	snapshot := func(at time.Time) {
		base := &quota.Tenant{ID: t.ID, Plan: t.Plan} // plan and catalog defaults
		if plan, ok := replay.Plans[tenant]; ok {
			base.Plan = plan // the plan it had then
		}
		u := client.UsageAt{Tenant: tenant, At: at, Resources: make([]client.UsageResource, 0, len(a.cat.Resources))}
		for _, res := range a.cat.Resources {
			hard, ok := replay.Hard[tenant][res.Name]
			if !ok {
				hard = a.cat.Hard(base, res)
			}
			u.Resources = append(u.Resources, client.UsageResource{Resource: res.Name, Used: replay.Usage[tenant][res.Name], Hard: hard})
		}
		out = append(out, u)
	}
	after, replayed := max(0, t.CreatedSeq-1), 0
	for len(out) < len(moments) {
		es, err := a.store.Events(r.Context(), quota.EventFilter{Tenant: tenant, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		if replayed += len(es); replayed > maxReplay {
			return nil, quota.Errorf(quota.CodeReplayTooLong, "answering needs more than %d of this tenant's events replayed; ask for a time closer to the tenant's creation", maxReplay)
		}
		for _, e := range es {
			for len(out) < len(moments) && e.Time.After(moments[len(out)]) {
				snapshot(moments[len(out)])
			}
			if len(out) == len(moments) {
				break
			}
			if err := replay.Apply(e); err != nil {
				return nil, err
			}
			after = e.Seq
		}
		if len(es) < 1000 {
			for len(out) < len(moments) {
				snapshot(moments[len(out)])
			}
		}
	}
	return out, nil
}

func (a *API) setThresholds(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.Thresholds
	if err := decode(r, &req); err != nil {
		return err
	}
	res, _, err := a.do(w, r, who, "", quota.Op{Type: quota.OpSetThresholds, Tenant: r.PathValue("tenant"), Thresholds: req.Thresholds})
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.Thresholds{Thresholds: a.cat.TenantThresholds(res.Ops[0].Tenant)})
	return nil
}

func (a *API) getThresholds(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	t, err := a.store.Tenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.Thresholds{Thresholds: a.cat.TenantThresholds(t)})
	return nil
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateWebhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.URL) > 2048 || u.User != nil {
		return quota.Errorf(quota.CodeInvalid, "url must be an http:// or https:// URL without credentials, at most 2048 bytes")
	}
	if err := a.hooks.CheckURL(u); err != nil {
		return quota.Errorf(quota.CodeInvalid, "url: %v", err)
	}
	if len(req.Secret) < 16 || len(req.Secret) > 256 {
		return quota.Errorf(quota.CodeInvalid, "secret must be 16 to 256 bytes")
	}
	if len(req.Events) == 0 {
		req.Events = []string{string(quota.EventThreshold)}
	}
	if len(req.Events) > len(quota.EventTypes) {
		return quota.Errorf(quota.CodeInvalid, "too many event types")
	}
	for _, e := range req.Events {
		if e != "*" && !quota.EventType(e).Known() {
			return quota.Errorf(quota.CodeInvalid, "unknown event type %q; known: * %v", truncate(e, 64), quota.EventTypes)
		}
	}
	h := &quota.Webhook{URL: req.URL, Events: req.Events, Tenant: req.Tenant,
		Sealed: a.sealer.Seal([]byte(req.Secret), webhook.SecretContext)}
	res, _, err := a.do(w, r, who, "", quota.Op{Type: quota.OpPutWebhook, Webhook: h})
	if err != nil {
		return err
	}
	out := wireWebhook(res.Ops[0].Webhook)
	w.Header().Set("Location", "/api/v1/webhooks/"+out.ID)
	respond(w, http.StatusCreated, out)
	return nil
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	hs, err := a.store.Webhooks(r.Context())
	if err != nil {
		return err
	}
	out := client.WebhookList{Webhooks: make([]client.Webhook, 0, len(hs))}
	for _, h := range hs {
		out.Webhooks = append(out.Webhooks, wireWebhook(h))
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	if _, _, err := a.do(w, r, who, "", quota.Op{Type: quota.OpDeleteWebhook, ID: r.PathValue("id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func wireWebhook(h *quota.Webhook) client.Webhook {
	return client.Webhook{ID: h.ID, URL: h.URL, Events: h.Events, Tenant: h.Tenant, CreatedAt: h.CreatedAt.UTC()}
}
