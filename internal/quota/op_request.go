package quota

import "slices"

// RequestQuota is a tenant's ask for its hard quota of a resource to
// become Value. Under the resource's auto policy it is approved at once;
// under review it waits for an admin. A tenant has one open request per
// resource: a new value supersedes it.
type RequestQuota struct {
	Tenant, Resource string
	Value            int64
	ID               string // assigned by check
}

func (*RequestQuota) Type() OpType { return OpRequest }

func (op *RequestQuota) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if c.cat.Resource(op.Resource) == nil {
		return Errorf(CodeInvalid, "unknown resource %q", truncate(op.Resource, 140))
	}
	if op.Value < 0 {
		return Errorf(CodeInvalid, "value must be a non-negative integer")
	}
	op.ID = c.newID("req-")
	return nil
}

// needs reads the tenant's pending requests from the store.
func (op *RequestQuota) needs(n *needs) {
	n.tenant(op.Tenant)
	n.settled = true
}

// request evaluates a tenant's request for a new hard quota.
func (op *RequestQuota) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	res := ws.cat.Resource(op.Resource)
	if rg := ws.cat.Requestable(t, res); !rg.Contains(op.Value) {
		return OpResult{}, Errorf(CodeOutsideRange, "%s may be requested from %d to %d, not %d", res.Name, rg.Min, rg.Max, op.Value)
	}
	if used := ws.treeUsed(op.Tenant, res.Name); op.Value < used {
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
	approved, err := ws.approve(*ch, r, Actor{Name: "allot", Role: RoleSystem}, "approved automatically: the resource's policy is auto")
	if err != nil {
		return OpResult{}, err
	}
	return OpResult{Request: approved, Tenant: ws.tenants[op.Tenant], Created: true, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
