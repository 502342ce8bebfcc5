package quota

// SetQuota sets a tenant's own hard quota (and requestable range) of a
// resource. It may be set below usage: growth is then refused, shrinking
// still allowed.
type SetQuota struct {
	Tenant, Resource string
	Quota            QuotaOverride // Hard is required
}

func (*SetQuota) Type() OpType { return OpSetQuota }

func (op *SetQuota) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if c.cat.Resource(op.Resource) == nil {
		return Errorf(CodeInvalid, "unknown resource %q", truncate(op.Resource, 140))
	}
	if op.Quota.Hard == nil || *op.Quota.Hard < 0 {
		return Errorf(CodeInvalid, "hard must be a non-negative integer")
	}
	if r := op.Quota.Requestable; r != nil && (r.Min < 0 || r.Min > r.Max) {
		return Errorf(CodeInvalid, "requestable must have 0 <= min <= max")
	}
	return nil
}

func (op *SetQuota) needs(n *needs) { n.tenant(op.Tenant) }

func (op *SetQuota) apply(ws *workset, ch *Change) (OpResult, error) {
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
	used := ws.treeUsed(op.Tenant, op.Resource)
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant), OverQuota: used > after.Hard}, nil
}
