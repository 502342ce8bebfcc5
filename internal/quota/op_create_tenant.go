package quota

import "strings"

// CreateTenant creates a tenant, on a plan or the catalog's defaults, as a
// root or under a parent.
type CreateTenant struct {
	Tenant, Name, Plan string
	Parent             string // "": a root
}

func (*CreateTenant) Type() OpType { return OpCreateTenant }

func (op *CreateTenant) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckText("name", op.Name, 256); err != nil {
		return err
	}
	if op.Plan != "" && c.cat.Plans[op.Plan] == nil {
		return Errorf(CodeInvalid, "unknown plan %q", truncate(op.Plan, 140))
	}
	if op.Parent != "" {
		if err := checkTenant(&op.Parent); err != nil {
			return err
		}
		if op.Parent == op.Tenant {
			return Errorf(CodeParentCycle, "tenant %q cannot be its own parent", op.Tenant)
		}
	}
	return nil
}

func (op *CreateTenant) needs(n *needs) {
	n.tenant(op.Tenant)
	n.tenant(op.Parent)
}

func (op *CreateTenant) apply(ws *workset, ch *Change) (OpResult, error) {
	if ws.tenants[op.Tenant] != nil {
		return OpResult{}, Errorf(CodeConflict, "tenant %q exists already", op.Tenant)
	}
	// Ids that differ only by case name one tenant to a person reading
	// them; allot keeps them apart (byte for byte), but does not let a
	// second one be made.
	if other := ws.st.caseFold(op.Tenant); other != "" {
		return OpResult{}, Errorf(CodeConflict, "tenant %q exists already, spelled %q; ids that differ only by case are not allowed", op.Tenant, other)
	}
	if op.Parent != "" {
		if ws.tenants[op.Parent] == nil {
			return OpResult{}, Errorf(CodeParentNotFound, "parent %q not found", op.Parent)
		}
		if d := ws.depth(op.Parent) + 1; d > ws.st.maxDepth {
			return OpResult{}, Errorf(CodeTreeTooDeep, "under %q the tenant would be at level %d; a tree has at most %d levels", op.Parent, d, ws.st.maxDepth)
		}
	}
	t := &Tenant{ID: op.Tenant, Name: op.Name, Plan: op.Plan, Parent: op.Parent, CreatedAt: ws.now,
		Quotas: map[string]QuotaOverride{}, Limits: map[string]Range{}}
	ws.setTenant(op.Tenant, t)
	ws.event(ch, EventTenantCreate, op.Tenant, op.Tenant, nil, tenantView{t.Name, t.Plan, t.Parent})
	return OpResult{Tenant: t, Created: true, Changed: true, Usage: map[string]int64{}}, nil
}

// caseFold returns the tenant whose id equals id but for ASCII case, ""
// for none.
func (s *state) caseFold(id string) string {
	folded := strings.ToLower(id)
	if s.folded == nil {
		s.folded = make(map[string]string, len(s.tenants))
		for other := range s.tenants {
			s.folded[strings.ToLower(other)] = other
		}
	}
	if other, ok := s.folded[folded]; ok && other != id {
		if _, exists := s.tenants[other]; exists {
			return other
		}
	}
	return ""
}
