package quota

import (
	"crypto/rand"
	"encoding/hex"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Request asks for a tenant's hard quota of a resource to become Value.
type Request struct {
	ID          string
	Tenant      string
	Resource    string
	Value       int64
	Reason      string
	Status      RequestStatus
	RequestedBy string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	History     []RequestStep
}

// RequestStatus is where a request stands.
type RequestStatus string

const (
	RequestPending    RequestStatus = "pending"
	RequestApproved   RequestStatus = "approved" // and applied
	RequestDenied     RequestStatus = "denied"
	RequestSuperseded RequestStatus = "superseded" // replaced by a request for another value
)

// RequestStep is one entry of a request's history.
type RequestStep struct {
	Time    time.Time     `json:"time"`
	Actor   string        `json:"actor"`
	Status  RequestStatus `json:"status"`
	Comment string        `json:"comment,omitempty"`
}

// Webhook is a subscription: events of the listed types (or "*" for all),
// of one tenant or of all, are POSTed to URL, signed with the secret.
type Webhook struct {
	ID        string
	URL       string
	Events    []string
	Tenant    string // "" for every tenant
	Sealed    []byte // the signing secret, encrypted
	CreatedAt time.Time
}

// Matches reports whether the webhook wants e.
func (w *Webhook) Matches(e *Event) bool {
	if w.Tenant != "" && w.Tenant != e.Tenant {
		return false
	}
	return slices.Contains(w.Events, "*") || slices.Contains(w.Events, string(e.Type))
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID        int64
	Webhook   *Webhook
	Event     *Event
	Attempts  int
	CreatedAt time.Time
}

// newID returns a random identifier for requests and webhooks.
func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// request evaluates a tenant's request for a new hard quota.
func (ws *workset) request(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	res := ws.cat.Resource(op.Resource)
	if rg := ws.cat.Requestable(t, res); !rg.Contains(op.Value) {
		return OpResult{}, Errorf(CodeOutsideRange, "%s may be requested from %d to %d, not %d", res.Name, rg.Min, rg.Max, op.Value)
	}
	if used := ws.usage[op.Tenant][res.Name]; op.Value < used {
		return OpResult{}, Errorf(CodeBelowUsage, "%s is %d in use; a hard quota of %d would be below that", res.Name, used, op.Value)
	}
	open := ws.openRequest(op.Tenant, res.Name)
	if open != nil && open.Value == op.Value {
		return OpResult{Request: open, Usage: ws.usageOf(op.Tenant)}, nil
	}
	if open != nil {
		old := *open
		old.Status, old.UpdatedAt = RequestSuperseded, ws.now
		old.History = append(slices.Clip(old.History), RequestStep{ws.now, ch.Actor.Name, RequestSuperseded, "replaced by " + op.ID})
		ws.setRequest(&old)
		ws.event(ch, EventRequestSupersede, op.Tenant, old.ID, requestView(open), requestView(&old))
	}
	r := &Request{
		ID: op.ID, Tenant: op.Tenant, Resource: res.Name, Value: op.Value, Reason: ch.Reason,
		Status: RequestPending, RequestedBy: ch.Actor.Name, CreatedAt: ws.now, UpdatedAt: ws.now,
		History: []RequestStep{{ws.now, ch.Actor.Name, RequestPending, ch.Reason}},
	}
	ws.setRequest(r)
	ws.event(ch, EventRequestCreate, op.Tenant, r.ID, nil, requestView(r))
	if res.Policy != "auto" {
		return OpResult{Request: r, Created: true, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
	}
	approved, err := ws.approve(ch, r, Actor{Name: "allot", Role: RoleSystem}, "approved automatically: the resource's policy is auto")
	if err != nil {
		return OpResult{}, err
	}
	return OpResult{Request: approved, Tenant: ws.tenants[op.Tenant], Created: true, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

// decide approves or denies a pending request.
func (ws *workset) decide(ch Change, op Op) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		return OpResult{}, err
	}
	r := ws.requests[op.ID]
	if r == nil || r.Tenant != op.Tenant {
		return OpResult{}, Errorf(CodeNotFound, "request %q not found", op.ID)
	}
	if r.Status != RequestPending {
		return OpResult{}, Errorf(CodeConflict, "request %s is %s, not pending", r.ID, r.Status)
	}
	if !op.Approve {
		d := *r
		d.Status, d.UpdatedAt = RequestDenied, ws.now
		d.History = append(slices.Clip(d.History), RequestStep{ws.now, ch.Actor.Name, RequestDenied, op.Comment})
		ws.setRequest(&d)
		ws.event(ch, EventRequestDeny, op.Tenant, r.ID, requestView(r), requestView(&d))
		return OpResult{Request: &d, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
	}
	// Usage may have grown since the request was made.
	if used := ws.usage[op.Tenant][r.Resource]; r.Value < used {
		return OpResult{}, Errorf(CodeBelowUsage, "%s is %d in use now; a hard quota of %d would be below that", r.Resource, used, r.Value)
	}
	a, err := ws.approve(ch, r, ch.Actor, op.Comment)
	if err != nil {
		return OpResult{}, err
	}
	return OpResult{Request: a, Tenant: ws.tenants[op.Tenant], Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

// approve applies a request's value as the tenant's hard quota.
func (ws *workset) approve(ch Change, r *Request, by Actor, comment string) (*Request, error) {
	a := *r
	a.Status, a.UpdatedAt = RequestApproved, ws.now
	a.History = append(slices.Clip(a.History), RequestStep{ws.now, by.Name, RequestApproved, comment})
	ws.setRequest(&a)
	decided := ch
	decided.Actor, decided.Reason = by, "request "+r.ID
	ws.event(decided, EventRequestApprove, r.Tenant, r.ID, requestView(r), requestView(&a))
	hard := r.Value
	if _, err := ws.setQuota(decided, Op{Type: OpSetQuota, Tenant: r.Tenant, Resource: r.Resource, Quota: QuotaOverride{Hard: &hard}}); err != nil {
		return nil, err
	}
	return &a, nil
}

func (ws *workset) openRequest(tenant, resource string) *Request {
	for _, r := range ws.requests {
		if r.Tenant == tenant && r.Resource == resource && r.Status == RequestPending {
			return r
		}
	}
	return nil
}

func (ws *workset) setRequest(r *Request) {
	old := ws.requests[r.ID]
	ws.undo = append(ws.undo, func() { ws.requests[r.ID] = old })
	ws.requests[r.ID] = r
	ws.dirtyRequests[r.ID] = true
}

type requestViewT struct {
	Resource string        `json:"resource"`
	Value    int64         `json:"value"`
	Status   RequestStatus `json:"status"`
	Reason   string        `json:"reason,omitempty"`
}

func requestView(r *Request) any { return requestViewT{r.Resource, r.Value, r.Status, r.Reason} }

// reconcile makes the tenant's consumers of op.Kinds equal to op.Inventory,
// regardless of quotas and limits: the inventory is what exists.
func (ws *workset) reconcile(ch Change, op Op) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		return OpResult{}, err
	}
	ch.Reason = "reconcile"
	out := OpResult{Changed: false, Reconcile: &ReconcileResult{}}
	want := map[string]bool{}
	for _, item := range op.Inventory {
		want[item.ID] = true
		key := ConsumerKey{op.Tenant, item.ID}
		old := ws.consumers[key]
		r, err := ws.putConsumer(ch, Op{Type: OpPutConsumer, Tenant: op.Tenant, Consumer: item.ID, Spec: item.Spec, kind: item.kind, force: true})
		if err != nil {
			return OpResult{}, err
		}
		switch {
		case !r.Changed:
		case old == nil:
			out.Reconcile.Created = append(out.Reconcile.Created, item.ID)
		default:
			out.Reconcile.Updated = append(out.Reconcile.Updated, item.ID)
		}
	}
	for _, c := range ws.listed[op.Tenant] {
		if want[c.ID] || ws.consumers[c.Key()] == nil {
			continue
		}
		if _, err := ws.deleteConsumer(ch, Op{Type: OpDeleteConsumer, Tenant: op.Tenant, Consumer: c.ID}); err != nil {
			return OpResult{}, err
		}
		out.Reconcile.Deleted = append(out.Reconcile.Deleted, c.ID)
	}
	out.Changed = len(out.Reconcile.Created)+len(out.Reconcile.Updated)+len(out.Reconcile.Deleted) > 0
	out.Usage = ws.usageOf(op.Tenant)
	return out, nil
}

// ReconcileResult is what a reconciliation changed.
type ReconcileResult struct {
	Created, Updated, Deleted []string
}

// InventoryItem is one consumer that really exists.
type InventoryItem struct {
	ID   string
	Spec Spec
	kind *Kind
}

func (ws *workset) putWebhook(ch Change, op Op) (OpResult, error) {
	if op.Webhook.Tenant != "" {
		if _, err := ws.tenant(op.Webhook.Tenant); err != nil {
			return OpResult{}, err
		}
	}
	h := *op.Webhook
	h.CreatedAt = ws.now
	ws.setWebhook(h.ID, &h)
	ws.event(ch, EventWebhookCreate, h.Tenant, h.ID, nil, webhookView{h.URL, h.Events, h.Tenant})
	return OpResult{Webhook: &h, Created: true, Changed: true}, nil
}

func (ws *workset) deleteWebhook(ch Change, op Op) (OpResult, error) {
	h := ws.webhooks[op.ID]
	if h == nil {
		return OpResult{}, Errorf(CodeNotFound, "webhook %q not found", op.ID)
	}
	ws.setWebhook(op.ID, nil)
	ws.event(ch, EventWebhookDelete, h.Tenant, h.ID, webhookView{h.URL, h.Events, h.Tenant}, nil)
	return OpResult{Webhook: h, Changed: true}, nil
}

func (ws *workset) setWebhook(id string, h *Webhook) {
	old, had := ws.webhooks[id]
	ws.undo = append(ws.undo, func() {
		if had {
			ws.webhooks[id] = old
		} else {
			delete(ws.webhooks, id)
		}
	})
	ws.webhooks[id] = h
	ws.dirtyWebhooks[id] = true
}

type webhookView struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Tenant string   `json:"tenant,omitempty"`
}

func (ws *workset) setThresholds(ch Change, op Op) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	before := ws.cat.TenantThresholds(t)
	nt := cloneTenant(t)
	nt.Thresholds = op.Thresholds
	ws.newThresholds[op.Tenant] = true
	ws.setTenant(op.Tenant, nt)
	ws.event(ch, EventThresholdsSet, op.Tenant, op.Tenant, before, ws.cat.TenantThresholds(nt))
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

// usageMark is a resource's usage and hard quota at a moment.
type usageMark struct{ used, hard int64 }

// touch notes a tenant resource's state before the running change first
// moves it.
func (ws *workset) touch(tenant, resource string) {
	k := [2]string{tenant, resource}
	if _, ok := ws.touched[k]; ok || ws.touched == nil {
		return
	}
	if t := ws.tenants[tenant]; t != nil {
		if res := ws.cat.Resource(resource); res != nil {
			ws.touched[k] = usageMark{ws.usage[tenant][resource], ws.cat.Hard(t, res)}
		}
	}
}

// reached counts the thresholds (percentages) that used/hard has reached.
// A hard quota of 0 is reached by any use at all.
func reached(used, hard int64, thresholds []int64) int {
	n := 0
	for _, th := range thresholds {
		if used > 0 && atLeast(used, 100, hard, th) {
			n++
		}
	}
	return n
}

// atLeast reports a*b >= c*d for non-negative operands, without overflow.
func atLeast(a, b, c, d int64) bool {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	return h1 > h2 || h1 == h2 && l1 >= l2
}

type thresholdView struct {
	Threshold int64  `json:"threshold"`
	Direction string `json:"direction"` // "up" or "down"
	Used      int64  `json:"used"`
	Hard      int64  `json:"hard"`
}

// notify records a quota.threshold event for every threshold the running
// change crossed, either way, on the resources it touched. A change of the
// thresholds themselves is a new baseline, not a crossing.
func (ws *workset) notify(ch Change) {
	keys := make([][2]string, 0, len(ws.touched))
	for k := range ws.touched {
		keys = append(keys, k)
	}
	order := func(r string) int {
		return slices.IndexFunc(ws.cat.Resources, func(x *Resource) bool { return x.Name == r })
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return order(a[1]) - order(b[1])
	})
	for _, k := range keys {
		tenant, resource := k[0], k[1]
		t := ws.tenants[tenant]
		if t == nil || ws.newThresholds[tenant] {
			continue
		}
		ths := ws.cat.TenantThresholds(t)
		was := ws.touched[k]
		used, hard := ws.usage[tenant][resource], ws.cat.Hard(t, ws.cat.Resource(resource))
		b, a := reached(was.used, was.hard, ths), reached(used, hard, ths)
		for i := b; i < a; i++ {
			ws.event(ch, EventThreshold, tenant, resource, nil, thresholdView{ths[i], "up", used, hard})
		}
		for i := b - 1; i >= a; i-- {
			ws.event(ch, EventThreshold, tenant, resource, nil, thresholdView{ths[i], "down", used, hard})
		}
	}
}
