package quota

// DeleteTenant deletes a tenant that owns no consumers and has no
// children, with its
// overrides, usage, tokens, requests and webhooks.
type DeleteTenant struct {
	Tenant string
}

func (*DeleteTenant) Type() OpType { return OpDeleteTenant }

func (op *DeleteTenant) check(*checker) error { return checkTenant(&op.Tenant) }

// needs counts the tenant's consumers in the store, which must hold every
// change before this one.
func (op *DeleteTenant) needs(n *needs) {
	n.tenant(op.Tenant)
	n.counts = append(n.counts, op.Tenant)
	n.subtrees = append(n.subtrees, op.Tenant)
	n.settled = true
}

func (op *DeleteTenant) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	if n := ws.counts[op.Tenant]; n > 0 {
		return OpResult{}, Errorf(CodeConflict, "tenant %q still owns %d consumers; delete them first", op.Tenant, n)
	}
	if below := ws.subtrees[op.Tenant]; len(below) > 0 {
		return OpResult{}, Errorf(CodeHasChildren, "tenant %q has tenants below it (%d in all); move or delete them first", op.Tenant, len(below))
	}
	ws.setTenant(op.Tenant, nil)
	ws.deletedTenants[op.Tenant] = true
	ws.undo = append(ws.undo, func() { delete(ws.deletedTenants, op.Tenant) })
	ws.event(ch, EventTenantDelete, op.Tenant, op.Tenant, tenantView{t.Name, t.Plan, t.Parent}, nil)
	return OpResult{Tenant: t, Changed: true}, nil
}
