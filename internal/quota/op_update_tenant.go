package quota

// UpdateTenant renames a tenant or moves it to another plan. Its usage is
// kept even where the new plan's quotas are lower: like a lowered quota,
// that refuses growth, never what exists.
type UpdateTenant struct {
	Tenant string
	Name   string // "" keeps it
	Plan   string // "" keeps it; "-" for none (the catalog's defaults)
}

func (*UpdateTenant) Type() OpType { return OpUpdateTenant }

func (op *UpdateTenant) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckText("name", op.Name, 256); err != nil {
		return err
	}
	if op.Plan != "" && op.Plan != "-" && c.cat.Plans[op.Plan] == nil {
		return Errorf(CodeInvalid, "unknown plan %q", truncate(op.Plan, 140))
	}
	return nil
}

func (op *UpdateTenant) needs(n *needs) { n.tenant(op.Tenant) }

func (op *UpdateTenant) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	nt := cloneTenant(t)
	if op.Name != "" {
		nt.Name = op.Name
	}
	switch op.Plan {
	case "":
	case "-":
		nt.Plan = ""
	default:
		nt.Plan = op.Plan
	}
	if nt.Name == t.Name && nt.Plan == t.Plan {
		return OpResult{Tenant: t, Usage: ws.usageOf(op.Tenant)}, nil
	}
	for _, res := range ws.cat.Resources {
		if ws.cat.Hard(nt, res) != ws.cat.Hard(t, res) {
			ws.touch(op.Tenant, res.Name)
		}
	}
	ws.setTenant(op.Tenant, nt)
	ws.event(ch, EventTenantUpdate, op.Tenant, op.Tenant, tenantView{t.Name, t.Plan}, tenantView{nt.Name, nt.Plan})
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
