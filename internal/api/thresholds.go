package api

import (
	"net/http"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

func (a *API) setThresholds(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.Thresholds
	if err := decode(r, &req); err != nil {
		return err
	}
	res, _, err := a.do(w, r, who, "", &quota.SetThresholds{Tenant: r.PathValue("tenant"), Thresholds: req.Thresholds})
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.Thresholds{Thresholds: a.cat.TenantThresholds(res.Ops[0].Tenant)})
	return nil
}

func (a *API) getThresholds(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	v, err := a.engine.View(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.Thresholds{Thresholds: a.cat.TenantThresholds(v.Tenant)})
	return nil
}
