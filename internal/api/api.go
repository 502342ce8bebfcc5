// Package api serves allot's native REST API under /api/v1.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/route"
	"github.com/allot-dev/allot/internal/webhook"
)

// Config holds the native API's dependencies.
type Config struct {
	Engine *quota.Engine
	Store  quota.Store
	Sealer *auth.Sealer // encrypts the secret keys of AK/SK credentials
	Region string
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
	// Streams bounds the event streams: in all, and per token.
	MaxStreams, MaxStreamsPerToken int // defaults 1000 and 10
	// Webhooks says which targets subscriptions may name; nil: public
	// addresses only.
	Webhooks *webhook.Policy
}

// API holds the native API's dependencies.
type API struct {
	engine *quota.Engine
	store  quota.Store
	cat    *quota.Catalog
	region string
	log    *slog.Logger
	sealer *auth.Sealer
	now    func() time.Time
	hub    *hub
	hooks  *webhook.Policy
}

// New returns the native API.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Engine == nil || cfg.Store == nil:
		return nil, errors.New("api: an engine and a store are required")
	case cfg.Sealer == nil:
		return nil, errors.New("api: a sealer is required")
	case cfg.Logger == nil:
		return nil, errors.New("api: a logger is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{engine: cfg.Engine, store: cfg.Store, cat: cfg.Engine.Catalog(), region: cfg.Region, log: cfg.Logger,
		sealer: cfg.Sealer, now: cfg.Now, hooks: cfg.Webhooks}
	a.hub = newHub(cfg.Store, cfg.Engine, cfg.Logger, cfg.MaxStreams, cfg.MaxStreamsPerToken)
	return a, nil
}

// Routes lists every route of the native API, who may call it and the
// query parameters it takes: the whole surface in one place.
func (a *API) Routes(mux route.Router) {
	mux.HandleFunc("GET /api/v1/openapi.json", a.serveOpenAPI)

	a.handle(mux, "POST /api/v1/tenants", adminOnly, a.createTenant, dryRun)
	a.handle(mux, "GET /api/v1/tenants", operators, a.listTenants)
	a.handle(mux, "GET /api/v1/tenants/{tenant}", tenantReads, a.getTenant)
	a.handle(mux, "PATCH /api/v1/tenants/{tenant}", adminOnly, a.updateTenant, dryRun)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}", adminOnly, a.deleteTenant, dryRun)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/tree", subtreeReads, a.getTree)

	a.handle(mux, "GET /api/v1/tenants/{tenant}/quotas", tenantReads, a.getQuotas)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/quotas/{resource}", adminOnly, a.setQuota, dryRun)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/limits/{kind}/{limit}", adminOnly, a.setLimit, dryRun)

	a.handle(mux, "GET /api/v1/tenants/{tenant}/consumers", tenantReads, a.listConsumers, "kind", "state", "limit", "cursor")
	a.handle(mux, "GET /api/v1/tenants/{tenant}/consumers/{consumer}", tenantReads, a.getConsumer)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/consumers/{consumer}", operators, a.putConsumer, dryRun)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}/consumers/{consumer}", operators, a.deleteConsumer, dryRun)
	a.handle(mux, "POST /api/v1/claims", operators, a.claims, dryRun)

	a.handle(mux, "POST /api/v1/tokens", adminOnly, a.createToken, dryRun)
	a.handle(mux, "GET /api/v1/tokens", adminOnly, a.listTokens)
	a.handle(mux, "DELETE /api/v1/tokens/{name}", adminOnly, a.revokeToken, dryRun)

	a.handle(mux, "POST /api/v1/tenants/{tenant}/credentials", adminOnly, a.createCredential, dryRun)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/credentials", adminOnly, a.listCredentials)
	a.handle(mux, "DELETE /api/v1/tenants/{tenant}/credentials/{access_key}", adminOnly, a.revokeCredential, dryRun)

	a.handle(mux, "GET /api/v1/events", anyone, a.listEvents, "after", "limit", "tenant", "audit")
	a.handle(mux, "GET /api/v1/events/stream", anyone, a.streamEvents, "after", "tenant")
	a.handle(mux, "GET /api/v1/tenants/{tenant}/usage", tenantReads, a.usageAt, "at")
	a.handle(mux, "GET /api/v1/tenants/{tenant}/usage/history", tenantReads, a.usageHistory, "from", "to", "points")

	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests", tenantWrites, a.createRequest, dryRun)
	a.handle(mux, "GET /api/v1/tenants/{tenant}/requests", tenantReads, a.listRequests, "status", "limit")
	a.handle(mux, "GET /api/v1/tenants/{tenant}/requests/{id}", tenantReads, a.getRequest)
	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests/{id}/approve", adminOnly, a.approveRequest, dryRun)
	a.handle(mux, "POST /api/v1/tenants/{tenant}/requests/{id}/deny", adminOnly, a.denyRequest, dryRun)
	a.handle(mux, "GET /api/v1/requests", operators, a.listRequests, "status", "limit")

	a.handle(mux, "PUT /api/v1/tenants/{tenant}/inventory", operators, a.putInventory, dryRun)
	a.handle(mux, "GET /api/v1/overquota", operators, a.overQuota)
	a.handle(mux, "GET /api/v1/utilisation", operators, a.utilisation, "limit", "q")
	a.handle(mux, "GET /api/v1/near-limit", operators, a.nearLimit, "min", "service", "resource", "plan", "sort", "offset", "limit")
	a.handle(mux, "GET /api/v1/tenants/{tenant}/thresholds", tenantReads, a.getThresholds)
	a.handle(mux, "PUT /api/v1/tenants/{tenant}/thresholds", adminOnly, a.setThresholds, dryRun)

	a.handle(mux, "POST /api/v1/webhooks", adminOnly, a.createWebhook, dryRun)
	a.handle(mux, "GET /api/v1/webhooks", adminOnly, a.listWebhooks)
	a.handle(mux, "DELETE /api/v1/webhooks/{id}", adminOnly, a.deleteWebhook, dryRun)
}

// dryRun is the query parameter of every write: answer what would happen,
// change nothing.
const dryRun = "dry_run"

// Handler returns the native API with problem answers for unknown routes
// and wrong methods.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Routes(mux)
	return route.Fallback(mux, a.Render)
}

// Render writes a routing problem as a native problem answer.
func (a *API) Render(w http.ResponseWriter, r *http.Request, p route.Problem) {
	Fail(w, r, a.log, quota.Errorf(p.Code, "%s", p.Message))
}

// access says who may call a route.
type access int

const (
	anyone       access = iota // any valid token; handlers scope what a tenant sees
	adminOnly                  // admin
	operators                  // admin and service
	tenantReads                // admin, service, and the tenant named in the path
	tenantWrites               // admin, and the tenant named in the path (asking for a change)
	// subtreeReads: admin, service, and a tenant on the path from the root
	// to the tenant named (the tenant itself or an ancestor); the handler
	// checks the path.
	subtreeReads
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, who quota.Actor) error

// handle registers fn behind authentication, the route's access rule and
// its query parameters: any other parameter is refused, never ignored.
func (a *API) handle(mux route.Router, pattern string, acc access, fn handlerFunc, params ...string) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if t := r.PathValue("tenant"); t != "" {
			r.SetPathValue("tenant", quota.CanonicalTenant(t))
		}
		who, err := a.authenticate(r)
		if err == nil {
			err = checkQuery(r, params)
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

// checkQuery refuses a malformed query string, a parameter the route does
// not take, a parameter given twice, and values that are not valid text.
func checkQuery(r *http.Request, allowed []string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return quota.Errorf(quota.CodeInvalid, "the query string is malformed")
	}
	for name, values := range q {
		if !slices.Contains(allowed, name) {
			takes := "takes no query parameters"
			if len(allowed) > 0 {
				takes = "takes " + strings.Join(allowed, ", ")
			}
			return quota.Errorf(quota.CodeUnknownParameter, "unknown query parameter %q: this route %s", truncate(name, 64), takes)
		}
		if len(values) > 1 {
			return quota.Errorf(quota.CodeInvalid, "query parameter %s is given %d times", name, len(values))
		}
		if err := quota.CheckText(name, values[0], 1024); err != nil {
			return err
		}
	}
	return nil
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
	if who.Role == quota.RoleTenant && pathTenant != "" && acc != subtreeReads && !quota.SameTenant(pathTenant, who.Tenant) {
		return quota.Errorf(quota.CodeNotFound, "tenant %q not found", truncate(pathTenant, 130))
	}
	allowed := who.Role == quota.RoleAdmin
	switch acc {
	case anyone:
		allowed = true
	case operators:
		allowed = allowed || who.Role == quota.RoleService
	case tenantReads, subtreeReads:
		allowed = allowed || who.Role == quota.RoleService || who.Role == quota.RoleTenant
	case tenantWrites:
		allowed = allowed || who.Role == quota.RoleTenant
	}
	if !allowed {
		return quota.Errorf(quota.CodeForbidden, "a %s token may not do this", who.Role)
	}
	return nil
}
