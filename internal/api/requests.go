package api

import (
	"net/http"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// Requests for a new hard quota: tenants ask, admins (or a resource's
// auto policy) decide.

func (a *API) createRequest(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateRequestRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return quota.Errorf(quota.CodeInvalid, "value is required")
	}
	res, _, err := a.do(w, r, who, req.Reason, &quota.RequestQuota{
		Tenant: r.PathValue("tenant"), Resource: req.Resource, Value: *req.Value,
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
		if _, err := a.engine.View(r.Context(), tenant); err != nil {
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
	res, _, err := a.do(w, r, who, "", &quota.Decide{Tenant: r.PathValue("tenant"), ID: r.PathValue("id"),
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
