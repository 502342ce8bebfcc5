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
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/route"
)

// Dialect serves the DCS endpoints.
type Dialect struct {
	store    quota.Store
	tenants  TenantReader
	cat      *quota.Catalog
	log      *slog.Logger
	sealer   *auth.Sealer
	verifier *Verifier
	lockout  *lockout
	instance *quota.Resource // what feeds the "instance" row
	ram      *quota.Resource // what feeds the "ram" row
}

// Config holds the dialect's dependencies.
type Config struct {
	Store   quota.Store  // tokens and access keys
	Tenants TenantReader // quotas and usage
	Catalog *quota.Catalog
	Sealer  *auth.Sealer     // opens the secret keys of access keys
	Now     func() time.Time // the clock signatures are checked against; nil: time.Now
	Logger  *slog.Logger
}

// TenantReader answers a tenant and its ancestors (parent first) as of
// the last commit: the engine.
type TenantReader interface {
	Path(ctx context.Context, tenant string) ([]*quota.TenantView, error)
}

// New returns the dialect.
func New(cfg Config) (*Dialect, error) {
	if cfg.Store == nil || cfg.Tenants == nil || cfg.Catalog == nil || cfg.Sealer == nil || cfg.Logger == nil {
		return nil, errors.New("dcs: a store, tenants, a catalog, a sealer and a logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	store, cat, log, now := cfg.Store, cfg.Catalog, cfg.Logger, cfg.Now
	d := &Dialect{store: store, tenants: cfg.Tenants, cat: cat, log: log, sealer: cfg.Sealer, lockout: newLockout(now)}
	d.verifier = &Verifier{Secret: d.secret, Now: now}
	mapping := cat.Dialects["dcs"]
	d.instance, d.ram = cat.Resource(mapping["instance"]), cat.Resource(mapping["ram"])
	if d.instance == nil {
		log.Warn("dcs: the catalog maps no resource to the instance row; it is reported as 0", "mapped_to", mapping["instance"])
	}
	if d.ram == nil {
		log.Warn("dcs: the catalog maps no resource to the ram row; it is reported as 0", "mapped_to", mapping["ram"])
	}
	return d, nil
}

// Routes lists the dialect's routes.
func (d *Dialect) Routes(mux route.Router) {
	mux.HandleFunc("GET /v2/{project_id}/quota", d.quota(false))
	mux.HandleFunc("GET /v1.0/{project_id}/quota", d.quota(true))
}

// Handler serves the dialect under /v2/ and /v1.0/; unknown routes and
// wrong methods get DCS errors, and every answer an X-Request-Id.
func (d *Dialect) Handler() http.Handler {
	mux := http.NewServeMux()
	d.Routes(mux)
	fallback := route.Fallback(mux, Render)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if w.Header().Get("X-Request-Id") == "" {
			w.Header().Set("X-Request-Id", newRequestID())
		}
		fallback.ServeHTTP(w, r)
	})
}

// Render writes a routing problem as a DCS error.
func Render(w http.ResponseWriter, _ *http.Request, p route.Problem) {
	switch p.Status {
	case http.StatusMethodNotAllowed:
		fail(w, p.Status, "DCS.5001", "Method not allowed.")
	case http.StatusNotFound:
		fail(w, p.Status, "DCS.4001", "The URL does not exist.")
	default:
		fail(w, http.StatusBadRequest, codeInvalidRequest, "Invalid request: "+p.Message)
	}
}

// codeInvalidRequest is allot's DCS code for a request it cannot take
// (DCS documents none for this).
const codeInvalidRequest = "DCS.4000"

var projectPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (d *Dialect) quota(withUser bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		project := quota.CanonicalTenant(r.PathValue("project_id"))
		if r.URL.RawQuery != "" {
			fail(w, http.StatusBadRequest, codeInvalidRequest, "Invalid request: this endpoint takes no query parameters.")
			return
		}
		who, err := d.authenticate(r)
		if err != nil {
			d.authFailed(w, r, err)
			return
		}
		if !projectPattern.MatchString(project) {
			fail(w, http.StatusBadRequest, "DCS.4002", "Invalid project ID format.")
			return
		}
		if p := r.Header.Get("X-Project-Id"); p != "" && !quota.SameTenant(p, project) {
			fail(w, http.StatusUnauthorized, "DCS.1004", "The project ID does not match the token.")
			return
		}
		if who.Role == quota.RoleTenant && !quota.SameTenant(who.Tenant, project) {
			fail(w, http.StatusUnauthorized, "DCS.1004", "The project ID does not match the token.")
			return
		}
		path, err := d.tenants.Path(r.Context(), project)
		if quota.ErrorCode(err) == quota.CodeNotFound {
			fail(w, http.StatusNotFound, "DCS.4001", "The project does not exist.")
			return
		}
		if err != nil {
			d.internal(w, r, err)
			return
		}
		t := path[0].Tenant
		q := quotas{Resources: []row{d.row("instance", path, d.instance), d.row("ram", path, d.ram)}}
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

// row shows the tenant's own usage and, as its quota, its own hard quota
// with the headroom of its path applied (quota.ShownHard): a client is not
// told it may create what a parent's quota would refuse.
func (d *Dialect) row(typ string, path []*quota.TenantView, res *quota.Resource) row {
	t, used := path[0].Tenant, path[0].Usage
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
	r.Quota = d.int32(t, typ, "quota", quota.ShownHard(d.cat, path, res)/per)
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
		from := sourceHost(r)
		// A locked-out key and address is refused before any work, and
		// whatever it sends: a right guess must not be told apart.
		if a, err := ParseAuthorization(r.Header.Get("Authorization")); err == nil && d.lockout.locked(a.Access, from) {
			return quota.Actor{Name: a.Access}, &signatureError{ak: a.Access, from: from, err: errLockedOut}
		}
		// GET bodies are empty; read at most a little to hash what came.
		ak, err := d.verifier.Verify(r.Context(), r, nil)
		if err != nil {
			return quota.Actor{Name: ak}, &signatureError{ak: ak, from: from, err: err}
		}
		d.lockout.succeeded(ak, from)
		t, err := d.store.Token(r.Context(), ak)
		if err != nil {
			return quota.Actor{}, err
		}
		actor := quota.Actor{Name: t.Name, Role: t.Role, Tenant: t.Tenant}
		auth.NoteCaller(r.Context(), actor)
		return actor, nil
	}
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		return quota.Actor{}, errNoToken
	}
	return auth.Authenticate(r.Context(), d.store, token)
}

// sourceHost is the address a request came from: the connection's, since
// allot does not trust X-Forwarded-For.
func sourceHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var errNoToken = errors.New("no token")

type signatureError struct {
	ak, from string
	err      error
}

func (e *signatureError) Error() string { return e.err.Error() }
func (e *signatureError) Unwrap() error { return e.err }

// secret finds the secret key of an access key for the verifier.
func (d *Dialect) secret(ctx context.Context, ak string) (string, error) {
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

var errLockedOut = errors.New("too many failed signatures; the access key is refused from this address for a while")

func (d *Dialect) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	var se *signatureError
	switch {
	case errors.As(err, &se):
		// Only a fresh, well-formed request for a real, active key whose
		// signature is wrong counts (the verifier checks everything else
		// first): the access key travels in clear, so anything cheaper to
		// forge would let anyone lock its owner out.
		if errors.Is(err, ErrBadSignature) {
			if d.lockout.failed(se.ak, se.from) {
				d.log.Warn("dcs: access key locked out from an address after repeated failed signatures",
					"access_key", se.ak, "from", se.from, "for", lockoutFor)
			}
		} else if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrExpired) &&
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
	if c := quota.ErrorCode(err); c == quota.CodeUnavailable || c == quota.CodeOverloaded || c == quota.CodeOutcomeUnknown {
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

// lockout refuses an access key from one source address for lockoutFor
// after maxFailures failed signatures in a row from there, as Huawei's API
// gateway refuses a key. Keying by address too means a stranger cannot lock
// the owner out from elsewhere. The table is bounded: failures are forgotten
// lockoutFor after the last one, expired entries are swept, and at maxEntries
// a random entry makes room.
type lockout struct {
	now        func() time.Time
	maxEntries int

	mu      sync.Mutex
	entries map[lockoutKey]*strikes
	swept   time.Time
}

type lockoutKey struct{ ak, from string }

type strikes struct {
	failures int
	last     time.Time // of the latest failure
	until    time.Time // the lockout's end; zero while not locked
}

// expired reports whether the entry no longer matters at now.
func (s *strikes) expired(now time.Time) bool {
	return !now.Before(s.until) && now.Sub(s.last) >= lockoutFor
}

const (
	maxFailures = 5
	lockoutFor  = 5 * time.Minute
	// maxLockoutEntries bounds the table (about 200 bytes an entry).
	maxLockoutEntries = 10_000
)

func newLockout(now func() time.Time) *lockout {
	return &lockout{now: now, maxEntries: maxLockoutEntries, entries: map[lockoutKey]*strikes{}}
}

func (l *lockout) locked(ak, from string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.entries[lockoutKey{ak, from}]
	return s != nil && l.now().Before(s.until)
}

// failed counts a failure and reports whether it locked the key out.
func (l *lockout) failed(ak, from string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) >= time.Minute {
		for k, s := range l.entries {
			if s.expired(now) {
				delete(l.entries, k)
			}
		}
		l.swept = now
	}
	k := lockoutKey{ak, from}
	s := l.entries[k]
	if s == nil || s.expired(now) {
		if s == nil && len(l.entries) >= l.maxEntries {
			for victim := range l.entries { // map order is random enough
				delete(l.entries, victim)
				break
			}
		}
		s = &strikes{}
		l.entries[k] = s
	}
	s.failures++
	s.last = now
	if s.failures < maxFailures {
		return false
	}
	s.failures, s.until = 0, now.Add(lockoutFor)
	return true
}

func (l *lockout) succeeded(ak, from string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, lockoutKey{ak, from})
}

// size is how many entries the table holds.
func (l *lockout) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
