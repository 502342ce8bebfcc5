// Package kraftcloud serves the KraftCloud users quotas API
// (GET /v1/users/quotas), so that KraftCloud's SDK and `kraft cloud quotas`
// work against allot unchanged.
package kraftcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/route"
)

// The fields of a quotas item, in the order KraftCloud sends them.
var (
	countFields = []string{"instances", "live_instances", "live_vcpus", "live_memory_mb",
		"service_groups", "services", "volumes", "total_volume_mb"}
	limitFields = []string{"min_memory_mb", "max_memory_mb", "min_vcpus", "max_vcpus",
		"min_volume_mb", "max_volume_mb", "min_autoscale_size", "max_autoscale_size"}
)

// KraftCloud's numeric error codes.
const (
	errnoNotFound   = 8
	errnoNotAllowed = 14
	errnoInvalid    = 3 // a malformed request
)

// Dialect serves the KraftCloud endpoints.
type Dialect struct {
	store   quota.Store
	tenants TenantReader
	cat     *quota.Catalog
	log     *slog.Logger
	// fields maps each KraftCloud field to the catalog name that feeds it,
	// from the catalog's dialects.kraftcloud section; "" for none.
	fields map[string]string
}

// Config holds the dialect's dependencies.
type Config struct {
	Store   quota.Store  // tokens
	Tenants TenantReader // quotas and usage
	Catalog *quota.Catalog
	Logger  *slog.Logger
}

// TenantReader answers a tenant and its ancestors (parent first) as of
// the last commit: the engine.
type TenantReader interface {
	Path(ctx context.Context, tenant string) ([]*quota.TenantView, error)
}

// New returns the dialect. Fields the catalog does not map to anything it
// knows are reported as 0 and logged here, once.
func New(cfg Config) (*Dialect, error) {
	if cfg.Store == nil || cfg.Tenants == nil || cfg.Catalog == nil || cfg.Logger == nil {
		return nil, errors.New("kraftcloud: a store, tenants, a catalog and a logger are required")
	}
	cat, log := cfg.Catalog, cfg.Logger
	d := &Dialect{store: cfg.Store, tenants: cfg.Tenants, cat: cat, log: log, fields: map[string]string{}}
	mapping := cat.Dialects["kraftcloud"]
	for _, f := range slices.Concat(countFields, limitFields) {
		name := mapping[f]
		res, kind, _, _, ok := cat.Lookup(name)
		isLimit := strings.HasPrefix(f, "min_") || strings.HasPrefix(f, "max_")
		if !ok || (isLimit && kind == nil) || (!isLimit && res == nil) {
			log.Warn("kraftcloud: field has no catalog source; it is reported as 0", "field", f, "mapped_to", name)
			continue
		}
		d.fields[f] = name
	}
	for f := range mapping {
		if !slices.Contains(countFields, f) && !slices.Contains(limitFields, f) {
			log.Warn("kraftcloud: the catalog maps a field KraftCloud does not have", "field", f)
		}
	}
	return d, nil
}

// Routes lists the dialect's routes.
func (d *Dialect) Routes(mux route.Router) {
	mux.HandleFunc("GET /v1/users/quotas", d.quotas)
	mux.HandleFunc("GET /v1/users/{uuid}/quotas", d.quotas)
}

// Handler serves the dialect under /v1/, answering unknown routes and wrong
// methods in KraftCloud's error shape.
func (d *Dialect) Handler() http.Handler {
	mux := http.NewServeMux()
	d.Routes(mux)
	return route.Fallback(mux, Render)
}

// Render writes a routing problem in KraftCloud's error shape.
func Render(w http.ResponseWriter, _ *http.Request, p route.Problem) {
	errno := 0
	switch p.Status {
	case http.StatusNotFound:
		errno, p.Message = errnoNotFound, "not found"
	case http.StatusMethodNotAllowed:
		errno = errnoNotAllowed
	case http.StatusBadRequest:
		errno = errnoInvalid
	}
	fail(w, p.Status, errno, p.Message)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (d *Dialect) quotas(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		fail(w, http.StatusUnauthorized, 0, "missing bearer token")
		return
	}
	who, err := auth.Authenticate(r.Context(), d.store, strings.TrimSpace(token))
	if err != nil {
		if quota.ErrorCode(err) == quota.CodeUnauthorized {
			fail(w, http.StatusUnauthorized, 0, "invalid token")
			return
		}
		d.internal(w, r, err)
		return
	}
	if len(r.URL.RawQuery) > 0 {
		fail(w, http.StatusBadRequest, errnoInvalid, "this endpoint takes no query parameters")
		return
	}
	tenant := quota.CanonicalTenant(r.PathValue("uuid"))
	switch {
	case tenant != "" && !uuidPattern.MatchString(tenant):
		fail(w, http.StatusBadRequest, 0, "malformed user UUID")
		return
	case tenant == "" && who.Role != quota.RoleTenant:
		fail(w, http.StatusNotFound, errnoNotFound, "an "+string(who.Role)+" token belongs to no user; ask /v1/users/{uuid}/quotas")
		return
	case tenant == "":
		tenant = who.Tenant
	case who.Role == quota.RoleTenant && !quota.SameTenant(tenant, who.Tenant):
		// Another user's UUID: answered exactly like one that does not exist.
		fail(w, http.StatusNotFound, errnoNotFound, "user not found")
		return
	}
	item, err := d.item(r, tenant)
	if quota.ErrorCode(err) == quota.CodeNotFound {
		fail(w, http.StatusNotFound, errnoNotFound, "user not found")
		return
	}
	if err != nil {
		d.internal(w, r, err)
		return
	}
	write(w, http.StatusOK, envelope{Status: "success", Data: map[string]any{"quotas": []any{item}}})
}

type item struct {
	Status string  `json:"status"`
	UUID   string  `json:"uuid"`
	Used   ordered `json:"used"`
	Hard   ordered `json:"hard"`
	Limits ordered `json:"limits"`
}

func (d *Dialect) item(r *http.Request, tenant string) (*item, error) {
	path, err := d.tenants.Path(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	t, used := path[0].Tenant, path[0].Usage
	it := &item{Status: "success", UUID: t.ID,
		Used: ordered{keys: countFields}, Hard: ordered{keys: countFields}, Limits: ordered{keys: limitFields}}
	for _, f := range countFields {
		if res, _, _, _, ok := d.cat.Lookup(d.fields[f]); ok {
			it.Used.vals = append(it.Used.vals, used[res.Name])
			it.Hard.vals = append(it.Hard.vals, quota.ShownHard(d.cat, path, res))
		} else {
			it.Used.vals = append(it.Used.vals, 0)
			it.Hard.vals = append(it.Hard.vals, 0)
		}
	}
	for _, f := range limitFields {
		var v int64
		if _, k, l, bound, ok := d.cat.Lookup(d.fields[f]); ok {
			rg := d.cat.Limit(t, k, l)
			v = rg.Min
			if bound == "max" {
				v = rg.Max
			}
		}
		it.Limits.vals = append(it.Limits.vals, v)
	}
	return it, nil
}

// ordered is a JSON object of integers with its keys in a fixed order, so
// answers are byte-stable.
type ordered struct {
	keys []string
	vals []int64
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(o.vals[i], 10))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type envelope struct {
	Status  string         `json:"status"`
	Message string         `json:"message,omitempty"`
	Errors  []errorEntry   `json:"errors,omitempty"`
	Data    map[string]any `json:"data"`
}

type errorEntry struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
	Error   int    `json:"error,omitempty"` // KraftCloud's numeric code, where one applies
}

func fail(w http.ResponseWriter, status, errno int, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
	}
	write(w, status, envelope{Status: "error", Message: msg,
		Errors: []errorEntry{{Status: status, Message: msg, Error: errno}}, Data: map[string]any{}})
}

func (d *Dialect) internal(w http.ResponseWriter, r *http.Request, err error) {
	d.log.Error("kraftcloud: request failed", "path", r.URL.Path, "err", err)
	status := http.StatusInternalServerError
	if c := quota.ErrorCode(err); c == quota.CodeUnavailable || c == quota.CodeOverloaded || c == quota.CodeOutcomeUnknown {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	fail(w, status, 0, "internal error")
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
