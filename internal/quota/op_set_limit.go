package quota

// SetLimit sets a tenant's own range for one limit of a kind: every single
// consumer's attributes under that limit must lie in it.
type SetLimit struct {
	Tenant, Kind, Limit string
	Range               Range
}

func (*SetLimit) Type() OpType { return OpSetLimit }

func (op *SetLimit) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	k := c.cat.Kind(op.Kind)
	if k == nil {
		return Errorf(CodeInvalid, "unknown kind %q", truncate(op.Kind, 140))
	}
	if k.LimitDef(op.Limit) == nil {
		return Errorf(CodeInvalid, "unknown limit %q of kind %s", truncate(op.Limit, 140), k.Name)
	}
	if op.Range.Min < 0 || op.Range.Min > op.Range.Max {
		return Errorf(CodeInvalid, "a limit must have 0 <= min <= max")
	}
	return nil
}

func (op *SetLimit) needs(n *needs) { n.tenant(op.Tenant) }

func (op *SetLimit) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	k := ws.cat.Kind(op.Kind)
	key := LimitKey(op.Kind, op.Limit)
	before := ws.cat.Limit(t, k, k.LimitDef(op.Limit))
	nt := cloneTenant(t)
	nt.Limits[key] = op.Range
	ws.setTenant(op.Tenant, nt)
	ws.dirtyLimits[[2]string{op.Tenant, key}] = true
	ws.event(ch, EventLimitSet, op.Tenant, key, before, op.Range)
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
