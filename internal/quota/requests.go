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

// approve applies a request's value as the tenant's hard quota.
func (ws *workset) approve(ch Change, r *Request, by Actor, comment string) (*Request, error) {
	a := *r
	a.Status, a.UpdatedAt = RequestApproved, ws.now
	a.History = append(slices.Clip(a.History), RequestStep{ws.now, by.Name, RequestApproved, comment})
	ws.setRequest(&a)
	decided := ch
	decided.Actor, decided.Reason = by, "request "+r.ID
	ws.event(&decided, EventRequestApprove, r.Tenant, r.ID, requestView(r), requestView(&a))
	hard := r.Value
	if _, err := (&SetQuota{Tenant: r.Tenant, Resource: r.Resource, Quota: QuotaOverride{Hard: &hard}}).apply(ws, &decided); err != nil {
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
