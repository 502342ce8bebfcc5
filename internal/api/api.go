// Package api serves allot's native REST API under /api/v1.
package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/webhook"
)

// API holds the native API's dependencies.
type API struct {
	engine *quota.Engine
	store  quota.Store
	cat    *quota.Catalog
	region string
	log    *slog.Logger
	sealer *auth.Sealer
	hooks  *webhook.Policy
}

// New returns the native API. sealer encrypts the secret keys of AK/SK
// credentials; hooks says which webhook targets subscriptions may name
// (nil: public addresses only).
func New(engine *quota.Engine, store quota.Store, sealer *auth.Sealer, region string, log *slog.Logger, hooks *webhook.Policy) *API {
	return &API{engine: engine, store: store, cat: engine.Catalog(), region: region, log: log, sealer: sealer, hooks: hooks}
}

// Router is where routes are registered: an *http.ServeMux, or a recorder
// in the test that holds the OpenAPI document to the routes.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Routes lists every route of the native API: the whole surface in one place.
func (a *API) Routes(mux Router) {
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)

	a.handle(mux, "POST /api/v1/tenants", adminOnly, a.createTenant)
	a.handle(mux, "GET /api/v1/tenants", operators, a.listTenants)
	a.handle(mux, "GET /api/v1/tenants/{tenant}", tenantReads, a.getTenant)
	a.handle(mux, "PATCH /api/v1/tenants/{tenant}", adminOnly, a.updateTenant)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}", adminOnly, a.deleteTenant)

	a.handle(mux, "GET /api/v1/tenants/{tenant}/quotas", tenantReads, a.getQuotas)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/quotas/{resource}", adminOnly, a.setQuota)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/limits/{kind}/{limit}", adminOnly, a.setLimit)

	a.handle(mux, "GET /api/v1/tenants/{tenant}/consumers", tenantReads, a.listConsumers)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/consumers/{consumer}", tenantReads, a.getConsumer)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/consumers/{consumer}", operators, a.putConsumer)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}/consumers/{consumer}", operators, a.deleteConsumer)
	a.handle(mux, "POST /api/v1/claims", operators, a.claims)

	a.handle(mux, "POST /api/v1/tokens", adminOnly, a.createToken)
	a.handle(mux, "GET /api/v1/tokens", adminOnly, a.listTokens)
	a.handle(mux, "DELETE /api/v1/tokens/{name}", adminOnly, a.revokeToken)

	a.handle(mux, "POST /api/v1/tenants/{tenant}/credentials", adminOnly, a.createCredential)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/credentials", adminOnly, a.listCredentials)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}/credentials/{access_key}", adminOnly, a.revokeCredential)

	a.handle(mux, "GET /api/v1/events", anyone, a.listEvents)
	a.handle(mux, "GET /api/v1/events/stream", anyone, a.streamEvents)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/usage", tenantReads, a.usageAt)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/usage/history", tenantReads, a.usageHistory)

	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests", tenantWrites, a.createRequest)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/requests", tenantReads, a.listRequests)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/requests/{id}", tenantReads, a.getRequest)
	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests/{id}/approve", adminOnly, a.approveRequest)
	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests/{id}/deny", adminOnly, a.denyRequest)
	a.handle(mux, "GET /api/v1/requests", operators, a.listRequests)

	a.handle(mux, "PUT /api/v1/tenants/{tenant}/inventory", operators, a.putInventory)
	a.handle(mux, "GET /api/v1/overquota", operators, a.overQuota)
	a.handle(mux, "GET /api/v1/utilisation", operators, a.utilisation)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/thresholds", tenantReads, a.getThresholds)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/thresholds", adminOnly, a.setThresholds)

	a.handle(mux, "POST /api/v1/webhooks", adminOnly, a.createWebhook)
	a.handle(mux, "GET /api/v1/webhooks", adminOnly, a.listWebhooks)
	a.handle(mux, "DELETE /api/v1/webhooks/{id}", adminOnly, a.deleteWebhook)
}

// Handler returns the native API with problem answers for unknown routes
// and wrong methods.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Routes(mux)
	return Fallback(mux, a.log)
}

// Fallback serves mux, answering requests that match no route with a
// problem: 405 (with Allow) when the path exists under another method, else 404.
func Fallback(mux *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := AllowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			Fail(w, r, log, quota.Errorf(codeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, strings.Join(allow, ", ")))
			return
		}
		Fail(w, r, log, quota.Errorf(quota.CodeNotFound, "no such route: %s", truncate(r.URL.Path, 200)))
	})
}

// AllowedMethods lists the methods mux routes for r's path.
func AllowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// access says who may call a route.
type access int

const (
	anyone       access = iota // any valid token; handlers scope what a tenant sees
	adminOnly                  // admin
	operators                  // admin and service
	tenantReads                // admin, service, and the tenant named in the path
	tenantWrites               // admin, and the tenant named in the path (asking for a change)
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, who quota.Actor) error

// handle registers fn behind authentication and the route's access rule.
func (a *API) handle(mux Router, pattern string, acc access, fn handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		who, err := a.authenticate(r)
		if _, qerr := url.ParseQuery(r.URL.RawQuery); err == nil && qerr != nil {
			err = quota.Errorf(quota.CodeInvalid, "the query string is malformed")
		}
		if err == nil {
			err = authorize(who, acc, r.PathValue("tenant"))
		}
		if err == nil {
			err = fn(w, r, who)
		}
		if err != nil {
			Fail(w, r, a.log, err)
		}
	})
}

func (a *API) authenticate(r *http.Request) (quota.Actor, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return quota.Actor{}, quota.Errorf(quota.CodeUnauthorized, "an Authorization: Bearer <token> header is required")
	}
	return auth.Authenticate(r.Context(), a.store, strings.TrimSpace(token))
}

// authorize applies a route's access rule. A tenant asking about another
// tenant is told it does not exist, so existence never leaks.
func authorize(who quota.Actor, acc access, pathTenant string) error {
	if who.Role == quota.RoleTenant && pathTenant != "" && pathTenant != who.Tenant {
		return quota.Errorf(quota.CodeNotFound, "tenant %q not found", truncate(pathTenant, 130))
	}
	allowed := who.Role == quota.RoleAdmin
	switch acc {
	case anyone:
		allowed = true
	case operators:
		allowed = allowed || who.Role == quota.RoleService
	case tenantReads:
		allowed = allowed || who.Role == quota.RoleService || who.Role == quota.RoleTenant
	case tenantWrites:
		allowed = allowed || who.Role == quota.RoleTenant
	}
	if !allowed {
		return quota.Errorf(quota.CodeForbidden, "a %s token may not do this", who.Role)
	}
	return nil
}
