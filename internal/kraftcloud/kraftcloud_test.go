package kraftcloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// The user of KraftCloud's documentation example.
const userUUID = "471a2a73-36db-4df9-bb63-82a45810e88a"

type fixture struct {
	t     *testing.T
	srv   *testserver.Server
	cli   *client.Client
	user  string // token of the user
	other string // token of another user
	svc   string // service token
	ctx   context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testserver.Start(t)
	ctx := t.Context()
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	f := &fixture{t: t, srv: srv, cli: c, ctx: ctx}
	for _, id := range []string{userUUID, "0b9d7e5c-1111-4222-8333-944445555666"} {
		if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(role, tenant, name string) string {
		tk, err := c.CreateToken(ctx, client.CreateTokenRequest{Role: role, Tenant: tenant, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return tk.Secret
	}
	f.user = tok("tenant", userUUID, "user")
	f.other = tok("tenant", "0b9d7e5c-1111-4222-8333-944445555666", "other")
	f.svc = tok("service", "", "svc")
	return f
}

func (f *fixture) get(path, token string, method ...string) (int, http.Header, []byte) {
	f.t.Helper()
	m := "GET"
	if len(method) > 0 {
		m = method[0]
	}
	req, _ := http.NewRequest(m, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// setUpLikeTheDocs gives the user the quotas, limits and usage of the
// example in KraftCloud's users API documentation.
func (f *fixture) setUpLikeTheDocs() {
	f.t.Helper()
	hard := map[string]int64{
		"compute.instances": 16, "compute.live_instances": 16, "compute.live_vcpus": 16, "compute.live_memory_mb": 4096,
		"compute.service_groups": 253, "compute.services": 253, "compute.volumes": 253, "compute.total_volume_mb": 1024,
	}
	for res, h := range hard {
		if _, err := f.cli.SetQuota(f.ctx, userUUID, res, client.SetQuotaRequest{Hard: &h}); err != nil {
			f.t.Fatal(err)
		}
	}
	one, gib := int64(1), int64(1024)
	if _, err := f.cli.SetLimit(f.ctx, userUUID, "compute.volume", "size_mb", client.SetLimitRequest{Min: &one, Max: &gib}); err != nil {
		f.t.Fatal(err)
	}
	svc := client.New(f.srv.URL, client.WithToken(f.svc))
	put := func(id string, req client.PutConsumerRequest) {
		if _, err := svc.PutConsumer(f.ctx, userUUID, id, req, client.PutOptions{}); err != nil {
			f.t.Fatal(err)
		}
	}
	put("web", client.PutConsumerRequest{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 128}})
	put("web-sg", client.PutConsumerRequest{Kind: "compute.service_group", Attributes: map[string]int64{"services": 1}})
}

func TestQuotasGolden(t *testing.T) {
	f := newFixture(t)
	f.setUpLikeTheDocs()
	status, hdr, body := f.get("/v1/users/quotas", f.user)
	if status != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", status, hdr.Get("Content-Type"), body)
	}
	golden.AssertJSON(t, "testdata/users_quotas.golden", body)
	status, _, byUUID := f.get("/v1/users/"+userUUID+"/quotas", f.user)
	if status != 200 {
		t.Fatalf("by uuid: %d %s", status, byUUID)
	}
	golden.AssertJSON(t, "testdata/users_uuid_quotas.golden", byUUID)
	if status, _, _ := f.get("/v1/users/"+userUUID+"/quotas", f.srv.AdminToken); status != 200 {
		t.Fatalf("admin by uuid: %d", status)
	}
	if status, _, _ := f.get("/v1/users/"+userUUID+"/quotas", f.svc); status != 200 {
		t.Fatalf("service by uuid: %d", status)
	}
}

// The structs are shaped like the official SDK's (sdk.kraft.cloud/users):
// every field a Go int, unknown fields ignored. Decoding fails if a field is
// not an integer; the checks fail if one is renamed or missing.
type sdkResponse struct {
	Status string `json:"status"`
	Data   struct {
		Quotas []struct {
			Status string `json:"status"`
			UUID   string `json:"uuid"`
			Used   struct {
				Instances     int `json:"instances"`
				LiveInstances int `json:"live_instances"`
				LiveVcpus     int `json:"live_vcpus"`
				LiveMemoryMb  int `json:"live_memory_mb"`
				ServiceGroups int `json:"service_groups"`
				Services      int `json:"services"`
				Volumes       int `json:"volumes"`
				TotalVolumeMb int `json:"total_volume_mb"`
			} `json:"used"`
			Hard struct {
				Instances     int `json:"instances"`
				LiveInstances int `json:"live_instances"`
				LiveVcpus     int `json:"live_vcpus"`
				LiveMemoryMb  int `json:"live_memory_mb"`
				ServiceGroups int `json:"service_groups"`
				Services      int `json:"services"`
				Volumes       int `json:"volumes"`
				TotalVolumeMb int `json:"total_volume_mb"`
			} `json:"hard"`
			Limits struct {
				MinMemoryMb      int `json:"min_memory_mb"`
				MaxMemoryMb      int `json:"max_memory_mb"`
				MinVcpus         int `json:"min_vcpus"`
				MaxVcpus         int `json:"max_vcpus"`
				MinVolumeMb      int `json:"min_volume_mb"`
				MaxVolumeMb      int `json:"max_volume_mb"`
				MinAutoscaleSize int `json:"min_autoscale_size"`
				MaxAutoscaleSize int `json:"max_autoscale_size"`
			} `json:"limits"`
		} `json:"quotas"`
	} `json:"data"`
}

func TestDecodesLikeTheSDK(t *testing.T) {
	f := newFixture(t)
	f.setUpLikeTheDocs()
	_, _, body := f.get("/v1/users/quotas", f.user)

	// data has exactly one key, and every item field is present.
	var raw struct {
		Data map[string][]map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Data) != 1 || len(raw.Data["quotas"]) != 1 {
		t.Fatalf("data must hold exactly the key quotas with one item: %s", body)
	}
	item := raw.Data["quotas"][0]
	for group, fields := range map[string][]string{
		"used":   {"instances", "live_instances", "live_vcpus", "live_memory_mb", "service_groups", "services", "volumes", "total_volume_mb"},
		"hard":   {"instances", "live_instances", "live_vcpus", "live_memory_mb", "service_groups", "services", "volumes", "total_volume_mb"},
		"limits": {"min_memory_mb", "max_memory_mb", "min_vcpus", "max_vcpus", "min_volume_mb", "max_volume_mb", "min_autoscale_size", "max_autoscale_size"},
	} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(item[group], &m); err != nil {
			t.Fatalf("%s: %v", group, err)
		}
		if len(m) != len(fields) {
			t.Errorf("%s has %d fields, want %d", group, len(m), len(fields))
		}
		for _, name := range fields {
			if _, ok := m[name]; !ok {
				t.Errorf("%s.%s missing", group, name)
			}
		}
	}

	var r sdkResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("the SDK's structs cannot decode the answer: %v", err)
	}
	q := r.Data.Quotas[0]
	checks := []struct {
		name      string
		got, want int
	}{
		{"used.instances", q.Used.Instances, 1}, {"used.live_instances", q.Used.LiveInstances, 1},
		{"used.live_vcpus", q.Used.LiveVcpus, 1}, {"used.live_memory_mb", q.Used.LiveMemoryMb, 128},
		{"used.service_groups", q.Used.ServiceGroups, 1}, {"used.services", q.Used.Services, 1},
		{"used.volumes", q.Used.Volumes, 0}, {"used.total_volume_mb", q.Used.TotalVolumeMb, 0},
		{"hard.instances", q.Hard.Instances, 16}, {"hard.live_instances", q.Hard.LiveInstances, 16},
		{"hard.live_vcpus", q.Hard.LiveVcpus, 16}, {"hard.live_memory_mb", q.Hard.LiveMemoryMb, 4096},
		{"hard.service_groups", q.Hard.ServiceGroups, 253}, {"hard.services", q.Hard.Services, 253},
		{"hard.volumes", q.Hard.Volumes, 253}, {"hard.total_volume_mb", q.Hard.TotalVolumeMb, 1024},
		{"limits.min_memory_mb", q.Limits.MinMemoryMb, 16}, {"limits.max_memory_mb", q.Limits.MaxMemoryMb, 2048},
		{"limits.min_vcpus", q.Limits.MinVcpus, 1}, {"limits.max_vcpus", q.Limits.MaxVcpus, 8},
		{"limits.min_volume_mb", q.Limits.MinVolumeMb, 1}, {"limits.max_volume_mb", q.Limits.MaxVolumeMb, 1024},
		{"limits.min_autoscale_size", q.Limits.MinAutoscaleSize, 1}, {"limits.max_autoscale_size", q.Limits.MaxAutoscaleSize, 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if r.Status != "success" || q.Status != "success" || q.UUID != userUUID {
		t.Errorf("status %q / %q, uuid %q", r.Status, q.Status, q.UUID)
	}
}

// TestUsageIsLive walks an instance and a volume through their lives and
// reads the dialect after each step.
func TestUsageIsLive(t *testing.T) {
	f := newFixture(t)
	svc := client.New(f.srv.URL, client.WithToken(f.svc))
	type used struct{ instances, live, mem, vcpus, volumes, volMB int }
	read := func() used {
		t.Helper()
		_, _, body := f.get("/v1/users/quotas", f.user)
		var r sdkResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		u := r.Data.Quotas[0].Used
		return used{u.Instances, u.LiveInstances, u.LiveMemoryMb, u.LiveVcpus, u.Volumes, u.TotalVolumeMb}
	}
	inst := func(state string) {
		t.Helper()
		_, err := svc.PutConsumer(f.ctx, userUUID, "i1", client.PutConsumerRequest{Kind: "compute.instance", State: state,
			Attributes: map[string]int64{"memory_mb": 256, "vcpus": 2}}, client.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		do   func()
		want used
	}{
		{"create running", func() { inst("running") }, used{1, 1, 256, 2, 0, 0}},
		{"stop", func() { inst("stopped") }, used{1, 0, 0, 0, 0, 0}},
		{"start", func() { inst("running") }, used{1, 1, 256, 2, 0, 0}},
		{"add a volume", func() {
			_, err := svc.PutConsumer(f.ctx, userUUID, "v1", client.PutConsumerRequest{Kind: "compute.volume",
				Attributes: map[string]int64{"size_mb": 100}}, client.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}, used{1, 1, 256, 2, 1, 100}},
		{"delete the instance", func() {
			if err := svc.DeleteConsumer(f.ctx, userUUID, "i1", client.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, used{0, 0, 0, 0, 1, 100}},
		{"delete the volume", func() {
			if err := svc.DeleteConsumer(f.ctx, userUUID, "v1", client.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, used{0, 0, 0, 0, 0, 0}},
	}
	for _, s := range steps {
		s.do()
		if got := read(); got != s.want {
			t.Fatalf("after %s: used = %+v, want %+v", s.name, got, s.want)
		}
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, method, path, token string
		status, errno             int
	}{
		{"no token", "GET", "/v1/users/quotas", "", 401, 0},
		{"bad token", "GET", "/v1/users/quotas", "bm9wZTpub3Bl", 401, 0},
		{"another user's uuid", "GET", "/v1/users/0b9d7e5c-1111-4222-8333-944445555666/quotas", "USER", 404, 8},
		{"unknown uuid", "GET", "/v1/users/00000000-0000-4000-8000-000000000000/quotas", "ADMIN", 404, 8},
		{"unknown uuid seen by a tenant", "GET", "/v1/users/00000000-0000-4000-8000-000000000000/quotas", "USER", 404, 8},
		{"malformed uuid", "GET", "/v1/users/not-a-uuid/quotas", "USER", 400, 0},
		{"wrong method", "POST", "/v1/users/quotas", "USER", 405, 14},
		{"wrong method by uuid", "DELETE", "/v1/users/" + userUUID + "/quotas", "USER", 405, 14},
		{"unknown route", "GET", "/v1/instances", "USER", 404, 8},
		{"admin without a user", "GET", "/v1/users/quotas", "ADMIN", 404, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := strings.NewReplacer("USER", f.user, "ADMIN", f.srv.AdminToken).Replace(tt.token)
			status, hdr, body := f.get(tt.path, token, tt.method)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %s", status, tt.status, body)
			}
			if hdr.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", hdr.Get("Content-Type"))
			}
			var e struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Errors  []struct {
					Status  int    `json:"status"`
					Message string `json:"message"`
					Error   int    `json:"error"`
				} `json:"errors"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Status != "error" || e.Message == "" || len(e.Errors) != 1 || e.Errors[0].Status != tt.status ||
				e.Errors[0].Error != tt.errno || e.Data == nil || len(e.Data) != 0 {
				t.Fatalf("error body = %s", body)
			}
		})
	}
	// Tenant B's answer for A's UUID is byte-identical to one for a UUID
	// that does not exist: existence does not leak.
	_, _, a := f.get("/v1/users/"+userUUID+"/quotas", f.other)
	_, _, none := f.get("/v1/users/00000000-0000-4000-8000-000000000000/quotas", f.other)
	if !bytes.Equal(a, none) {
		t.Fatalf("another user's UUID answers differently from a missing one:\n%s\n%s", a, none)
	}
}

// TestUnmappedFieldsAreZeroAndLogged uses a catalog without volumes: the
// volume fields are reported as 0, and allot says so once at start.
func TestUnmappedFieldsAreZeroAndLogged(t *testing.T) {
	src := strings.Replace(string(quota.DefaultCatalogYAML()), "    volumes: compute.volumes\n", "", 1)
	src = strings.Replace(src, "    total_volume_mb: compute.total_volume_mb\n", "    total_volume_mb: compute.nothing_here\n", 1)
	cat, err := quota.ParseCatalog([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := testserver.Start(t, testserver.Options{Catalog: cat, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	if _, err := c.CreateTenant(t.Context(), client.CreateTenantRequest{ID: userUUID}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutConsumer(t.Context(), userUUID, "v", client.PutConsumerRequest{Kind: "compute.volume",
		Attributes: map[string]int64{"size_mb": 10}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/users/"+userUUID+"/quotas", nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r sdkResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	q := r.Data.Quotas[0]
	if q.Used.Volumes != 0 || q.Hard.Volumes != 0 || q.Used.TotalVolumeMb != 0 || q.Hard.TotalVolumeMb != 0 {
		t.Fatalf("unmapped fields = %+v %+v", q.Used, q.Hard)
	}
	for _, field := range []string{"field=volumes", "field=total_volume_mb"} {
		if n := strings.Count(logs.String(), field+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", field, n, logs.String())
		}
	}
}

// TestHardShowsThePathsHeadroom: a user under an organisation sees its own
// hard quota lowered to what the organisation's quota still lets it claim,
// so the SDK is never told it may create what allot would refuse.
func TestHardShowsThePathsHeadroom(t *testing.T) {
	f := newFixture(t)
	const org = "00000000-0000-4000-8000-00000000000a"
	if _, err := f.cli.CreateTenant(f.ctx, client.CreateTenantRequest{ID: org}); err != nil {
		t.Fatal(err)
	}
	mem := int64(1000)
	if _, err := f.cli.SetQuota(f.ctx, org, "compute.live_memory_mb", client.SetQuotaRequest{Hard: &mem}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli.UpdateTenant(f.ctx, userUUID, client.UpdateTenantRequest{Parent: client.MoveTo(org)}); err != nil {
		t.Fatal(err)
	}
	// A sibling takes 700 of the organisation's 1000.
	const sibling = "0b9d7e5c-1111-4222-8333-944445555666"
	if _, err := f.cli.UpdateTenant(f.ctx, sibling, client.UpdateTenantRequest{Parent: client.MoveTo(org)}); err != nil {
		t.Fatal(err)
	}
	svc := client.New(f.srv.URL, client.WithToken(f.svc))
	for tenant, mb := range map[string]int64{sibling: 700, userUUID: 100} {
		if _, err := svc.PutConsumer(f.ctx, tenant, "i", client.PutConsumerRequest{Kind: "compute.instance", State: "running",
			Attributes: map[string]int64{"memory_mb": mb}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, body := f.get("/v1/users/quotas", f.user)
	var r sdkResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	q := r.Data.Quotas[0]
	// Own hard quota 2048, used 100; the organisation has 1000-800 = 200
	// left, so hard shows 100+200.
	if q.Used.LiveMemoryMb != 100 || q.Hard.LiveMemoryMb != 300 {
		t.Fatalf("live_memory_mb used %d hard %d, want 100 and 300", q.Used.LiveMemoryMb, q.Hard.LiveMemoryMb)
	}
	// A quota the organisation does not set shows as the user's own.
	if q.Hard.LiveInstances != 10 {
		t.Fatalf("live_instances hard %d, want the user's own 10", q.Hard.LiveInstances)
	}
}
