package quota

import "slices"

// Decide approves or denies a pending request. Approving sets the
// requested hard quota, unless usage has grown past it meanwhile.
type Decide struct {
	Tenant, ID string
	Approve    bool
	Comment    string
}

func (*Decide) Type() OpType { return OpDecide }

func (op *Decide) check(*checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckID("request", op.ID); err != nil {
		return err
	}
	return CheckText("comment", op.Comment, 1024)
}

func (op *Decide) needs(n *needs) {
	n.tenant(op.Tenant)
	n.requests = append(n.requests, op.ID)
	n.settled = true
}

// decide approves or denies a pending request.
func (op *Decide) apply(ws *workset, ch *Change) (OpResult, error) {
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
	if used := ws.treeUsed(op.Tenant, r.Resource); r.Value < used {
		return OpResult{}, Errorf(CodeBelowUsage, "%s is %d in use now; a hard quota of %d would be below that", r.Resource, used, r.Value)
	}
	a, err := ws.approve(*ch, r, ch.Actor, op.Comment)
	if err != nil {
		return OpResult{}, err
	}
	return OpResult{Request: a, Tenant: ws.tenants[op.Tenant], Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
