package quota

// reconcile makes the tenant's consumers of op.Kinds equal to op.Inventory,
// regardless of quotas and limits: the inventory is what exists.
func (ws *workset) reconcile(ch Change, op Op) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		return OpResult{}, err
	}
	ch.Reason = "reconcile"
	out := OpResult{Changed: false, Reconcile: &ReconcileResult{}}
	want := map[string]bool{}
	for _, item := range op.Inventory {
		want[item.ID] = true
		key := ConsumerKey{op.Tenant, item.ID}
		old := ws.consumers[key]
		r, err := ws.putConsumer(ch, Op{Type: OpPutConsumer, Tenant: op.Tenant, Consumer: item.ID, Spec: item.Spec, kind: item.kind, force: true})
		if err != nil {
			return OpResult{}, err
		}
		switch {
		case !r.Changed:
		case old == nil:
			out.Reconcile.Created = append(out.Reconcile.Created, item.ID)
		default:
			out.Reconcile.Updated = append(out.Reconcile.Updated, item.ID)
		}
	}
	for _, c := range ws.listed[op.Tenant] {
		if want[c.ID] || ws.consumers[c.Key()] == nil {
			continue
		}
		if _, err := ws.deleteConsumer(ch, Op{Type: OpDeleteConsumer, Tenant: op.Tenant, Consumer: c.ID}); err != nil {
			return OpResult{}, err
		}
		out.Reconcile.Deleted = append(out.Reconcile.Deleted, c.ID)
	}
	out.Changed = len(out.Reconcile.Created)+len(out.Reconcile.Updated)+len(out.Reconcile.Deleted) > 0
	out.Usage = ws.usageOf(op.Tenant)
	return out, nil
}

// ReconcileResult is what a reconciliation changed.
type ReconcileResult struct {
	Created, Updated, Deleted []string
}

// InventoryItem is one consumer that really exists.
type InventoryItem struct {
	ID   string
	Spec Spec
	kind *Kind
}
