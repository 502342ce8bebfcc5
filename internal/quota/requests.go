package quota

import (
	"slices"
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
