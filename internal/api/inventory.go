package api

import (
	"net/http"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// putInventory reconciles a tenant's consumers with what really exists.
func (a *API) putInventory(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.Inventory
	if err := decode(r, &req); err != nil {
		return err
	}
	op := &quota.Reconcile{Tenant: r.PathValue("tenant"), Kinds: req.Kinds,
		Inventory: make([]quota.InventoryItem, len(req.Consumers))}
	for i, c := range req.Consumers {
		op.Inventory[i] = quota.InventoryItem{ID: c.Consumer, Spec: quota.Spec{Kind: c.Kind, State: c.State, Attributes: c.Attributes}}
	}
	res, dryRun, err := a.do(w, r, who, "", op)
	if err != nil {
		return err
	}
	o := res.Ops[0]
	out := client.Reconciliation{Tenant: op.Tenant, Created: orEmpty(o.Reconcile.Created), Updated: orEmpty(o.Reconcile.Updated),
		Deleted: orEmpty(o.Reconcile.Deleted), Usage: o.Usage, DryRun: dryRun}
	respond(w, http.StatusOK, out)
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
