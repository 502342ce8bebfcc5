package dcs

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

const lockoutProject = "0123456789abcdef0123456789abcdef"

// keyStore holds one tenant and its access keys; nothing else of a store is
// used by the dialect's quota route.
type keyStore struct {
	quota.Store
	tokens map[string]*quota.Token
}

func (s *keyStore) Token(_ context.Context, name string) (*quota.Token, error) {
	if t := s.tokens[name]; t != nil {
		return t, nil
	}
	return nil, quota.Errorf(quota.CodeNotFound, "no token %s", name)
}

// View answers the one project, as the engine would.
func (s *keyStore) Path(_ context.Context, id string) ([]*quota.TenantView, error) {
	if id != lockoutProject {
		return nil, quota.Errorf(quota.CodeNotFound, "no tenant %s", id)
	}
	return []*quota.TenantView{{Tenant: &quota.Tenant{ID: id, Name: "p", Plan: "free"}, Usage: map[string]int64{}}}, nil
}

// lockoutRig is the dialect over one real access key, with a clock the
// test moves.
type lockoutRig struct {
	t       *testing.T
	d       *Dialect
	handler http.Handler
	mu      sync.Mutex
	now     time.Time
}

func newLockoutRig(t *testing.T) *lockoutRig {
	t.Helper()
	sealer, err := auth.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := &keyStore{tokens: map[string]*quota.Token{
		testAK: {Name: testAK, Role: quota.RoleTenant, Tenant: lockoutProject, Sealed: sealer.Seal([]byte(testSK), testAK)},
	}}
	rig := &lockoutRig{t: t, now: testDate}
	if rig.d, err = New(Config{Store: st, Tenants: st, Catalog: quota.DefaultCatalog(), Sealer: sealer, Now: rig.clock, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	rig.handler = rig.d.Handler()
	return rig
}

func (rig *lockoutRig) clock() time.Time {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return rig.now
}

func (rig *lockoutRig) advance(d time.Duration) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.now = rig.now.Add(d)
}

// get sends a quota request from addr; prepare signs it (or not).
func (rig *lockoutRig) get(addr string, prepare func(r *http.Request)) int {
	rig.t.Helper()
	r := httptest.NewRequest("GET", "/v2/"+lockoutProject+"/quota", nil)
	r.RemoteAddr = addr
	r.Header.Set("User-Agent", "huaweicloud-usdk-go/3.0")
	r.Header.Set("X-Project-Id", lockoutProject)
	prepare(r)
	w := httptest.NewRecorder()
	rig.handler.ServeHTTP(w, r)
	return w.Code
}

// signedAt signs with the given key pair and date, as the SDK does.
func signedAt(ak, sk string, at time.Time) func(r *http.Request) {
	return func(r *http.Request) { Sign(r, nil, ak, sk, at, nil) }
}

// good signs with the real key pair at the rig's time.
func (rig *lockoutRig) good() func(r *http.Request) { return signedAt(testAK, testSK, rig.clock()) }

// badSignature is fresh and well-formed for the real key, but not made with
// its secret key: the one failure that counts.
func (rig *lockoutRig) badSignature() func(r *http.Request) {
	return signedAt(testAK, strings.Repeat("x", 40), rig.clock())
}

func TestForgeableFailuresDoNotLockOutTheKey(t *testing.T) {
	garbage := strings.Repeat("0f", 32)
	cases := []struct {
		name    string
		prepare func(rig *lockoutRig) func(r *http.Request)
	}{
		{"stale date, garbage signature", func(rig *lockoutRig) func(r *http.Request) {
			return signedAt(testAK, "not-the-secret", rig.clock().Add(-16*time.Minute))
		}},
		{"date in the future", func(rig *lockoutRig) func(r *http.Request) {
			return signedAt(testAK, "not-the-secret", rig.clock().Add(time.Hour))
		}},
		{"x-sdk-date not signed", func(rig *lockoutRig) func(r *http.Request) {
			return func(r *http.Request) {
				r.Header.Set("X-Sdk-Date", rig.clock().Format(dateFormat))
				r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+testAK+", SignedHeaders=host, Signature="+garbage)
			}
		}},
		{"no X-Sdk-Date", func(*lockoutRig) func(r *http.Request) {
			return func(r *http.Request) {
				r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+testAK+", SignedHeaders=x-sdk-date, Signature="+garbage)
			}
		}},
		{"no signature field", func(*lockoutRig) func(r *http.Request) {
			return func(r *http.Request) {
				r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+testAK+", SignedHeaders=x-sdk-date")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rig := newLockoutRig(t)
			// The worst case: the forger shares the owner's address (a NAT).
			const addr = "192.0.2.7:4000"
			for range 2 * maxFailures {
				if code := rig.get(addr, tc.prepare(rig)); code != http.StatusUnauthorized {
					t.Fatalf("forged request: %d, want 401", code)
				}
			}
			if code := rig.get(addr, rig.good()); code != http.StatusOK {
				t.Fatalf("the owner after %d forged requests: %d, want 200", 2*maxFailures, code)
			}
			if n := rig.d.lockout.size(); n != 0 {
				t.Fatalf("forged requests left %d lockout entries", n)
			}
		})
	}
}

func TestBadSignaturesLockOutOnlyTheirAddress(t *testing.T) {
	rig := newLockoutRig(t)
	const attacker, owner = "198.51.100.9:5555", "192.0.2.7:4000"
	for range maxFailures {
		if code := rig.get(attacker, rig.badSignature()); code != http.StatusUnauthorized {
			t.Fatalf("bad signature: %d", code)
		}
	}
	if code := rig.get(attacker, rig.good()); code != http.StatusUnauthorized {
		t.Fatalf("a right signature from the locked-out address: %d, want 401", code)
	}
	if code := rig.get(owner, rig.good()); code != http.StatusOK {
		t.Fatalf("the owner at another address: %d, want 200", code)
	}
	// Another port of the same host is the same address.
	if code := rig.get("198.51.100.9:6666", rig.good()); code != http.StatusUnauthorized {
		t.Fatalf("the locked-out host from another port: %d, want 401", code)
	}
	rig.advance(lockoutFor + time.Second)
	if code := rig.get(attacker, rig.good()); code != http.StatusOK {
		t.Fatalf("after the lockout: %d, want 200", code)
	}
}

func TestLockoutTableIsBounded(t *testing.T) {
	rig := newLockoutRig(t)
	const n = 30_000
	// Invented keys, fresh or stale, never enter the table.
	for i := range n {
		at := rig.clock()
		if i%2 == 1 {
			at = at.Add(-time.Hour)
		}
		rig.get("203.0.113.1:1000", signedAt(fmt.Sprintf("AKINVENTED%010d", i), "sk", at))
	}
	if got := rig.d.lockout.size(); got != 0 {
		t.Fatalf("%d invented keys left %d lockout entries, want 0", n, got)
	}
	// Bad signatures for the real key from many addresses stay under the cap.
	for i := range n {
		rig.get(fmt.Sprintf("10.%d.%d.%d:1000", i>>16, i>>8&0xff, i&0xff), rig.badSignature())
	}
	if got := rig.d.lockout.size(); got > maxLockoutEntries {
		t.Fatalf("%d addresses left %d lockout entries, over the cap of %d", n, got, maxLockoutEntries)
	}
	// A new address still locks out after the table filled.
	const late = "192.0.2.200:1"
	for range maxFailures {
		rig.get(late, rig.badSignature())
	}
	if code := rig.get(late, rig.good()); code != http.StatusUnauthorized {
		t.Fatalf("a full table let a locked-out address in: %d", code)
	}
}

func TestExpiredLockoutEntriesAreSwept(t *testing.T) {
	rig := newLockoutRig(t)
	for i := range 50 {
		addr := fmt.Sprintf("10.0.0.%d:1000", i)
		times := 1
		if i%2 == 0 {
			times = maxFailures // locked out
		}
		for range times {
			rig.get(addr, rig.badSignature())
		}
	}
	if got := rig.d.lockout.size(); got != 50 {
		t.Fatalf("%d entries, want 50", got)
	}
	rig.advance(lockoutFor + time.Minute)
	rig.get("10.0.1.1:1000", rig.badSignature()) // any failure sweeps, at most once a minute
	if got := rig.d.lockout.size(); got != 1 {
		t.Fatalf("%d entries after they all expired, want 1 (the newest)", got)
	}
}
