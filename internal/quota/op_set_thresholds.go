package quota

// SetThresholds sets a tenant's own warning thresholds; nil returns it to
// its plan's.
type SetThresholds struct {
	Tenant     string
	Thresholds []int64
}

func (*SetThresholds) Type() OpType { return OpSetThresholds }

func (op *SetThresholds) check(*checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckThresholds(op.Thresholds); err != nil {
		return Errorf(CodeInvalid, "thresholds: %v", err)
	}
	return nil
}

func (op *SetThresholds) needs(n *needs) { n.tenant(op.Tenant) }

func (op *SetThresholds) apply(ws *workset, ch *Change) (OpResult, error) {
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
