// Package dcs serves the Huawei Cloud DCS tenant quota API
// (GET /v2/{project_id}/quota), with IAM-style authentication: an allot token
// in X-Auth-Token, or requests signed with an access key pair (AK/SK) the way
// Huawei's SDKs sign them.
package dcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

// Dialect serves the DCS endpoints.
type Dialect struct {
	store    quota.Store
	cat      *quota.Catalog
	log      *slog.Logger
	sealer   *auth.Sealer
	verifier *Verifier
	lockout  *lockout
	instance *quota.Resource // what feeds the "instance" row
	ram      *quota.Resource // what feeds the "ram" row
}

// New returns the dialect. now is the clock signatures are checked against.
func New(store quota.Store, cat *quota.Catalog, sealer *auth.Sealer, now func() time.Time, log *slog.Logger) *Dialect {
	d := &Dialect{store: store, cat: cat, log: log, sealer: sealer, lockout: newLockout(now)}
	d.verifier = &Verifier{Secret: d.secret, Now: now}
	mapping := cat.Dialects["dcs"]
	d.instance, d.ram = cat.Resource(mapping["instance"]), cat.Resource(mapping["ram"])
	if d.instance == nil {
		log.Warn("dcs: the catalog maps no resource to the instance row; it is reported as 0", "mapped_to", mapping["instance"])
	}
	if d.ram == nil {
		log.Warn("dcs: the catalog maps no resource to the ram row; it is reported as 0", "mapped_to", mapping["ram"])
	}
	return d
}

// Routes lists the dialect's routes.
func (d *Dialect) Routes(mux api.Router) {
	mux.HandleFunc("GET /v2/{project_id}/quota", d.quota(false))
	mux.HandleFunc("GET /v1.0/{project_id}/quota", d.quota(true))
}

// Handler serves the dialect under /v2/ and /v1.0/; unknown routes and
// wrong methods get DCS errors, and every answer an X-Request-Id.
func (d *Dialect) Handler() http.Handler {
	mux := http.NewServeMux()
	d.Routes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if w.Header().Get("X-Request-Id") == "" {
			w.Header().Set("X-Request-Id", newRequestID())
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := api.AllowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			fail(w, http.StatusMethodNotAllowed, "DCS.5001", "Method not allowed.")
			return
		}
		fail(w, http.StatusNotFound, "DCS.4001", "The URL does not exist.")
	})
}

var projectPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (d *Dialect) quota(withUser bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		project := r.PathValue("project_id")
		who, err := d.authenticate(r)
		if err != nil {
			d.authFailed(w, r, err)
			return
		}
		if !projectPattern.MatchString(project) {
			fail(w, http.StatusBadRequest, "DCS.4002", "Invalid project ID format.")
			return
		}
		if p := r.Header.Get("X-Project-Id"); p != "" && p != project {
			fail(w, http.StatusUnauthorized, "DCS.1004", "The project ID does not match the token.")
			return
		}
		if who.Role == quota.RoleTenant && who.Tenant != project {
			fail(w, http.StatusUnauthorized, "DCS.1004", "The project ID does not match the token.")
			return
		}
		t, err := d.store.Tenant(r.Context(), project)
		if quota.ErrorCode(err) == quota.CodeNotFound {
			fail(w, http.StatusNotFound, "DCS.4001", "The project does not exist.")
			return
		}
		if err != nil {
			d.internal(w, r, err)
			return
		}
		used, err := d.store.Usage(r.Context(), project)
		if err != nil {
			d.internal(w, r, err)
			return
		}
		q := quotas{Resources: []row{d.row("instance", t, used, d.instance), d.row("ram", t, used, d.ram)}}
		if withUser {
			q.ResourceUser = &resourceUser{TenantID: t.ID, TenantName: t.Name}
		}
		write(w, http.StatusOK, map[string]any{"quotas": q})
	}
}

type quotas struct {
	Resources    []row         `json:"resources"`
	ResourceUser *resourceUser `json:"resource_user,omitempty"`
}

type resourceUser struct {
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name"`
}

// row is one quota row. Unit is null for plain counts: never {} (that
// breaks both Go clients).
type row struct {
	Unit  *string `json:"unit"`
	Min   int32   `json:"min"`
	Max   int32   `json:"max"`
	Quota int32   `json:"quota"`
	Used  int32   `json:"used"`
	Type  string  `json:"type"`
}

func (d *Dialect) row(typ string, t *quota.Tenant, used map[string]int64, res *quota.Resource) row {
	r := row{Type: typ}
	if res == nil {
		return r
	}
	per := int64(1)
	if res.Display != nil {
		per = res.Display.Per
		unit := res.Display.Unit
		r.Unit = &unit
	}
	req := d.cat.Requestable(t, res)
	// Usage rounds up (0.125 GB in use shows as 1), so a tenant is never
	// told it has more room than it has; quotas and ranges round down.
	r.Min = d.int32(t, typ, "min", req.Min/per)
	r.Max = d.int32(t, typ, "max", req.Max/per)
	r.Quota = d.int32(t, typ, "quota", d.cat.Hard(t, res)/per)
	u := used[res.Name]
	r.Used = d.int32(t, typ, "used", u/per+min(1, u%per))
	return r
}

// int32 saturates v into the official SDK's int32 fields.
func (d *Dialect) int32(t *quota.Tenant, typ, field string, v int64) int32 {
	if v > math.MaxInt32 {
		d.log.Warn("dcs: value exceeds int32; shown as the largest int32", "tenant", t.ID, "type", typ, "field", field, "value", v)
		return math.MaxInt32
	}
	return int32(v)
}

// authenticate accepts an AK/SK signature or an X-Auth-Token.
func (d *Dialect) authenticate(r *http.Request) (quota.Actor, error) {
	if strings.HasPrefix(r.Header.Get("Authorization"), "SDK-HMAC-SHA256") {
		// GET bodies are empty; read at most a little to hash what came.
		ak, err := d.verifier.Verify(r.Context(), r, nil)
		if err != nil {
			return quota.Actor{Name: ak}, &signatureError{ak: ak, err: err}
		}
		d.lockout.succeeded(ak)
		t, err := d.store.Token(r.Context(), ak)
		if err != nil {
			return quota.Actor{}, err
		}
		return quota.Actor{Name: t.Name, Role: t.Role, Tenant: t.Tenant}, nil
	}
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		return quota.Actor{}, errNoToken
	}
	return auth.Authenticate(r.Context(), d.store, token)
}

var errNoToken = errors.New("no token")

type signatureError struct {
	ak  string
	err error
}

func (e *signatureError) Error() string { return e.err.Error() }
func (e *signatureError) Unwrap() error { return e.err }

// secret finds the secret key of an access key for the verifier.
func (d *Dialect) secret(ctx context.Context, ak string) (string, error) {
	if d.lockout.locked(ak) {
		return "", errLockedOut
	}
	t, err := d.store.Token(ctx, ak)
	if quota.ErrorCode(err) == quota.CodeNotFound || (err == nil && (t.Sealed == nil || t.RevokedAt != nil)) {
		return "", ErrUnknownKey
	}
	if err != nil {
		return "", err
	}
	sk, err := d.sealer.Open(t.Sealed, ak)
	if err != nil {
		return "", err
	}
	return string(sk), nil
}

var errLockedOut = errors.New("too many failed signatures; the access key is refused for a while")

func (d *Dialect) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	var se *signatureError
	switch {
	case errors.As(err, &se):
		// Only failures against a real key count towards its lockout, so
		// made-up access keys cannot grow the table.
		if errors.Is(err, ErrBadSignature) || errors.Is(err, ErrExpired) {
			if d.lockout.failed(se.ak) {
				d.log.Warn("dcs: access key locked out after repeated failed signatures", "access_key", se.ak, "for", lockoutFor)
			}
		} else if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrMalformed) &&
			!errors.Is(err, ErrNoSignature) && !errors.Is(err, errLockedOut) {
			d.internal(w, r, err) // the store failed, not the caller
			return
		}
		d.log.Info("dcs: signature refused", "access_key", se.ak, "reason", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error_code": "APIGW.0301",
			"error_msg":  "Incorrect IAM authentication information: verify aksk signature fail",
			"request_id": w.Header().Get("X-Request-Id"),
		})
	case errors.Is(err, errNoToken):
		fail(w, http.StatusUnauthorized, "DCS.1003", "No token is provided.")
	case quota.ErrorCode(err) == quota.CodeUnauthorized:
		fail(w, http.StatusUnauthorized, "DCS.1001", "Invalid token.")
	default:
		d.internal(w, r, err)
	}
}

func (d *Dialect) internal(w http.ResponseWriter, r *http.Request, err error) {
	d.log.Error("dcs: request failed", "path", r.URL.Path, "err", err)
	status := http.StatusInternalServerError
	if c := quota.ErrorCode(err); c == quota.CodeUnavailable || c == quota.CodeOverloaded {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	fail(w, status, "DCS.5000", "Internal error.")
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	write(w, status, map[string]any{"error_code": code, "error_msg": msg, "error_ext_msg": nil})
}

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockout refuses an access key for lockoutFor after maxFailures failed
// signatures in a row, as Huawei's API gateway does.
type lockout struct {
	now   func() time.Time
	mu    sync.Mutex
	fails map[string]int
	until map[string]time.Time
}

const (
	maxFailures = 5
	lockoutFor  = 5 * time.Minute
)

func newLockout(now func() time.Time) *lockout {
	return &lockout{now: now, fails: map[string]int{}, until: map[string]time.Time{}}
}

func (l *lockout) locked(ak string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.until[ak]
	if ok && l.now().After(until) {
		delete(l.until, ak)
		return false
	}
	return ok
}

// failed counts a failure and reports whether it locked the key out.
func (l *lockout) failed(ak string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[ak]++
	if l.fails[ak] < maxFailures {
		return false
	}
	delete(l.fails, ak)
	l.until[ak] = l.now().Add(lockoutFor)
	return true
}

func (l *lockout) succeeded(ak string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, ak)
}
