package dcs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/dcs"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/testserver"
)

const (
	projectA = "0123456789abcdef0123456789abcdef"
	projectB = "fedcba9876543210fedcba9876543210"
)

type fixture struct {
	t      *testing.T
	srv    *testserver.Server
	admin  *client.Client
	mu     sync.Mutex // guards now against the server's goroutines
	now    time.Time
	key    *client.Credential
	tokenA string
	logs   *lockedBuffer
}

// clock is the server's time: the test's now.
func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// lockedBuffer is a log sink the server writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), logs: &lockedBuffer{}}
	f.srv = testserver.Start(t, testserver.Options{Now: f.clock,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	f.admin = client.New(f.srv.URL, client.WithToken(f.srv.AdminToken))
	ctx := t.Context()
	for _, p := range []string{projectA, projectB} {
		if _, err := f.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: p, Name: "project-" + p[:4]}); err != nil {
			t.Fatal(err)
		}
	}
	hard := int64(7)
	if _, err := f.admin.SetQuota(ctx, projectA, "dcs.instances", client.SetQuotaRequest{Hard: &hard}); err != nil {
		t.Fatal(err)
	}
	for i, mb := range []int64{1024, 2048, 128} { // 3.125 GB in use
		if _, err := f.admin.PutConsumer(ctx, projectA, fmt.Sprintf("redis-%d", i), client.PutConsumerRequest{
			Kind: "dcs.instance", Attributes: map[string]int64{"capacity_mb": mb}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.key, err = f.admin.CreateCredential(ctx, projectA); err != nil {
		t.Fatal(err)
	}
	tok, err := f.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "tenant", Tenant: projectA, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	f.tokenA = tok.Secret
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// get sends a request; prepare may sign it or set headers.
func (f *fixture) get(method, path string, prepare func(r *http.Request)) answer {
	f.t.Helper()
	r, _ := http.NewRequest(method, f.srv.URL+path, nil)
	r.Header.Set("Content-Type", "application/json")
	if prepare != nil {
		prepare(r)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func (f *fixture) signed(ak, sk, project string, at time.Time) func(r *http.Request) {
	return func(r *http.Request) {
		if project != "" {
			r.Header.Set("X-Project-Id", project)
		}
		r.Header.Set("User-Agent", "huaweicloud-usdk-go/3.0")
		dcs.Sign(r, nil, ak, sk, at, nil)
	}
}

func token(tok string) func(r *http.Request) {
	return func(r *http.Request) { r.Header.Set("X-Auth-Token", tok) }
}

func TestQuota(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, path string }{
		{"v2_quota", "/v2/" + projectA + "/quota"},
		{"v1.0_quota", "/v1.0/" + projectA + "/quota"},
	} {
		for how, prep := range map[string]func(*http.Request){
			"aksk":  f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now),
			"token": token(f.tokenA),
			"admin": token(f.srv.AdminToken),
		} {
			a := f.get("GET", tc.path, prep)
			if a.status != 200 || a.header.Get("Content-Type") != "application/json" || a.header.Get("X-Request-Id") == "" {
				t.Fatalf("%s by %s: %d %v %s", tc.name, how, a.status, a.header, a.body)
			}
			golden.AssertJSON(t, filepath.Join("testdata", tc.name+".golden"), a.body)
		}
	}
	// The instance row's unit is null, never {}: decode it the way the SDK's
	// model does (unit *string).
	a := f.get("GET", "/v2/"+projectA+"/quota", token(f.tokenA))
	var r struct {
		Quotas struct {
			Resources []struct {
				Unit  *string `json:"unit"`
				Min   int32   `json:"min"`
				Max   int32   `json:"max"`
				Quota int32   `json:"quota"`
				Used  int32   `json:"used"`
				Type  string  `json:"type"`
			} `json:"resources"`
		} `json:"quotas"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	rows := r.Quotas.Resources
	if len(rows) != 2 || rows[0].Unit != nil || rows[0].Used != 3 || rows[0].Quota != 7 ||
		rows[1].Unit == nil || *rows[1].Unit != "GB" || rows[1].Used != 4 || rows[1].Quota != 800 || rows[1].Min != 1 {
		t.Fatalf("rows = %s", a.body)
	}
}

func TestInt32Saturation(t *testing.T) {
	f := newFixture(t)
	huge := int64(math.MaxInt32) * 3
	if _, err := f.admin.SetQuota(t.Context(), projectA, "dcs.instances", client.SetQuotaRequest{Hard: &huge,
		Requestable: &client.Range{Min: 1, Max: huge}}); err != nil {
		t.Fatal(err)
	}
	a := f.get("GET", "/v2/"+projectA+"/quota", token(f.tokenA))
	if !strings.Contains(string(a.body), fmt.Sprintf(`"quota":%d`, math.MaxInt32)) {
		t.Fatalf("not saturated: %s", a.body)
	}
	if !strings.Contains(f.logs.String(), "exceeds int32") {
		t.Fatal("saturation not logged")
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	pathA := "/v2/" + projectA + "/quota"
	cases := []struct {
		name, method, path string
		prep               func(*http.Request)
		status             int
		code               string
	}{
		{"no token", "GET", pathA, nil, 401, "DCS.1003"},
		{"invalid token", "GET", pathA, token("bm9wZTpub3Bl"), 401, "DCS.1001"},
		{"another project's id with a token", "GET", "/v2/" + projectB + "/quota", token(f.tokenA), 401, "DCS.1004"},
		{"another project's id with a key", "GET", "/v2/" + projectB + "/quota", f.signed(f.key.AccessKey, f.key.SecretKey, projectB, f.now), 401, "DCS.1004"},
		{"X-Project-Id not the path's", "GET", pathA, f.signed(f.key.AccessKey, f.key.SecretKey, projectB, f.now), 401, "DCS.1004"},
		{"malformed project id", "GET", "/v2/NOT-A-PROJECT/quota", token(f.tokenA), 400, "DCS.4002"},
		{"unknown project (admin)", "GET", "/v2/00000000000000000000000000000000/quota", token(f.srv.AdminToken), 404, "DCS.4001"},
		{"unknown URL", "GET", "/v2/" + projectA + "/quotas", token(f.tokenA), 404, "DCS.4001"},
		{"wrong method", "POST", pathA, token(f.tokenA), 405, "DCS.5001"},
		{"wrong secret key", "GET", pathA, f.signed(f.key.AccessKey, strings.Repeat("x", 40), projectA, f.now), 401, "APIGW.0301"},
		{"unknown access key", "GET", pathA, f.signed("AKNOBODY", f.key.SecretKey, projectA, f.now), 401, "APIGW.0301"},
		{"clock 16 minutes behind", "GET", pathA, f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now.Add(-16*time.Minute)), 401, "APIGW.0301"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.get(tc.method, tc.path, tc.prep)
			var e struct {
				Code string `json:"error_code"`
				Msg  string `json:"error_msg"`
			}
			json.Unmarshal(a.body, &e)
			if a.status != tc.status || e.Code != tc.code || e.Msg == "" {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if a.header.Get("X-Request-Id") == "" || a.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", a.header)
			}
			name := "error_" + strings.NewReplacer(" ", "_", "'", "", "(", "", ")", "").Replace(tc.name)
			// Request ids differ per request; pin everything else.
			golden.AssertJSON(t, filepath.Join("testdata", name+".golden"), bytes.Replace(a.body, []byte(a.header.Get("X-Request-Id")), []byte("REQUEST-ID"), 1))
		})
	}
	if a := f.get("GET", pathA, f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now.Add(-14*time.Minute))); a.status != 200 {
		t.Fatalf("clock 14 minutes behind: %d %s", a.status, a.body)
	}
}

func TestRevokedKeyStopsAtOnce(t *testing.T) {
	f := newFixture(t)
	sign := f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now)
	if a := f.get("GET", "/v2/"+projectA+"/quota", sign); a.status != 200 {
		t.Fatalf("before revoking: %d", a.status)
	}
	if err := f.admin.RevokeCredential(t.Context(), projectA, f.key.AccessKey); err != nil {
		t.Fatal(err)
	}
	if a := f.get("GET", "/v2/"+projectA+"/quota", sign); a.status != 401 || !strings.Contains(string(a.body), "APIGW.0301") {
		t.Fatalf("after revoking: %d %s", a.status, a.body)
	}
}

func TestLockoutAfterFiveFailures(t *testing.T) {
	f := newFixture(t)
	bad := f.signed(f.key.AccessKey, strings.Repeat("x", 40), projectA, f.now)
	good := f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now)
	for range 5 {
		f.get("GET", "/v2/"+projectA+"/quota", bad)
	}
	if a := f.get("GET", "/v2/"+projectA+"/quota", good); a.status != 401 {
		t.Fatalf("right after 5 failures a good signature got %d", a.status)
	}
	if !strings.Contains(f.logs.String(), "locked out") {
		t.Fatal("the lockout was not logged")
	}
	f.advance(5*time.Minute + time.Second)
	if a := f.get("GET", "/v2/"+projectA+"/quota", f.signed(f.key.AccessKey, f.key.SecretKey, projectA, f.now)); a.status != 200 {
		t.Fatalf("after the lockout: %d %s", a.status, a.body)
	}
}

func TestCredentialsAPI(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	keys, err := f.admin.Credentials(ctx, projectA)
	if err != nil || len(keys) != 1 || keys[0].AccessKey != f.key.AccessKey || keys[0].SecretKey != "" {
		t.Fatalf("credentials = %+v, %v", keys, err)
	}
	if len(f.key.AccessKey) != 20 || len(f.key.SecretKey) != 40 {
		t.Fatalf("key pair = %+v", f.key)
	}
	tenant := client.New(f.srv.URL, client.WithToken(f.tokenA))
	if _, err := tenant.CreateCredential(ctx, projectA); !client.IsCode(err, "forbidden") {
		t.Fatalf("a tenant created a credential: %v", err)
	}
	if err := f.admin.RevokeCredential(ctx, projectB, f.key.AccessKey); !client.IsCode(err, "not_found") {
		t.Fatalf("revoking through another tenant: %v", err)
	}
	if _, err := f.admin.CreateCredential(ctx, "nobody"); !client.IsCode(err, "not_found") {
		t.Fatalf("credential for an unknown tenant: %v", err)
	}
	// An access key is not a bearer token.
	bearer := client.New(f.srv.URL, client.WithToken(f.key.AccessKey))
	if _, err := bearer.Quotas(ctx, projectA); !client.IsCode(err, "unauthorized") {
		t.Fatalf("access key used as a bearer token: %v", err)
	}
}

// TestQuotaShowsThePathsHeadroom: a project under an organisation sees its
// own quota lowered to what the organisation still lets it claim.
func TestQuotaShowsThePathsHeadroom(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const org = "0000000000000000000000000000000a"
	if _, err := f.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: org}); err != nil {
		t.Fatal(err)
	}
	five := int64(5)
	if _, err := f.admin.SetQuota(ctx, org, "dcs.instances", client.SetQuotaRequest{Hard: &five}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{projectA, projectB} {
		if _, err := f.admin.UpdateTenant(ctx, p, client.UpdateTenantRequest{Parent: client.MoveTo(org)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.admin.PutConsumer(ctx, projectB, "redis-b", client.PutConsumerRequest{
		Kind: "dcs.instance", Attributes: map[string]int64{"capacity_mb": 128}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	a := f.get("GET", "/v2/"+projectA+"/quota", token(f.tokenA))
	var r struct {
		Quotas struct {
			Resources []struct {
				Quota int32  `json:"quota"`
				Used  int32  `json:"used"`
				Type  string `json:"type"`
			} `json:"resources"`
		} `json:"quotas"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	// Own quota 7, 3 in use; the organisation's 5 has 5-4 = 1 left: 3+1.
	if row := r.Quotas.Resources[0]; row.Type != "instance" || row.Used != 3 || row.Quota != 4 {
		t.Fatalf("instance row = %+v, want used 3 quota 4", row)
	}
}
