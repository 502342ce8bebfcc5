package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/testserver"
)

// epoch is the test server's clock: every timestamp it hands out is this one,
// and no reservation ever expires during a test.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// env is a real allot server with two tenants, a and b, and a client per role.
type env struct {
	srv     *testserver.Server
	admin   *client.Client
	service *client.Client // token "svc"
	tenantA *client.Client // token "ta", tenant a
	tenantB *client.Client // token "tb", tenant b
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testserver.Start(t, testserver.Options{Now: func() time.Time { return epoch }})
	ctx := t.Context()
	e := &env{srv: srv, admin: client.New(srv.URL, client.WithToken(srv.AdminToken))}
	for _, id := range []string{"a", "b"} {
		if _, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: id, Name: "Tenant " + id}); err != nil {
			t.Fatalf("creating tenant %s: %v", id, err)
		}
	}
	e.service = e.tokenClient(t, "service", "", "svc")
	e.tenantA = e.tokenClient(t, "tenant", "a", "ta")
	e.tenantB = e.tokenClient(t, "tenant", "b", "tb")
	return e
}

func (e *env) tokenClient(t *testing.T, role, tenant, name string) *client.Client {
	t.Helper()
	tk, err := e.admin.CreateToken(t.Context(), client.CreateTokenRequest{Role: role, Tenant: tenant, Name: name})
	if err != nil {
		t.Fatalf("creating token %s: %v", name, err)
	}
	if tk.Secret == "" {
		t.Fatalf("token %s: no secret in the answer", name)
	}
	return client.New(e.srv.URL, client.WithToken(tk.Secret))
}

func ptr[T any](v T) *T { return &v }

func instance(memMB int64, state string) client.PutConsumerRequest {
	return client.PutConsumerRequest{Kind: "compute.instance", State: state, Attributes: map[string]int64{"memory_mb": memMB}}
}

func volume(sizeMB int64) client.PutConsumerRequest {
	return client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": sizeMB}}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantProblem checks that err is a *client.Error with status and code, both
// through errors.As and client.IsCode, and returns it.
func wantProblem(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s (HTTP %d)", code, status)
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v, want a *client.Error", err, err)
	}
	if ce.Status != status || ce.Problem.Code != code || ce.Problem.Status != status {
		t.Fatalf("err = HTTP %d %+v, want HTTP %d code %s", ce.Status, ce.Problem, status, code)
	}
	if !client.IsCode(err, code) {
		t.Fatalf("IsCode(%v, %q) = false", err, code)
	}
	if client.IsCode(err, code+"_not") {
		t.Fatalf("IsCode matches a code it is not")
	}
	if !strings.Contains(err.Error(), code) {
		t.Fatalf("message %q does not name the code %s", err, code)
	}
	return ce
}

func footprint(c *client.Consumer) map[string]int64 {
	out := map[string]int64{}
	for k, v := range c.Footprint {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func consumerIDs(cs []client.Consumer) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Consumer
	}
	return strings.Join(ids, ",")
}

// --- Every method, against a real server ------------------------------------

func TestTenants(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	pro, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "p", Plan: "pro"})
	noErr(t, "CreateTenant p", err)
	if want := (client.Tenant{ID: "p", Name: "p", Plan: "pro", CreatedAt: epoch}); *pro != want {
		t.Fatalf("CreateTenant p = %+v, want %+v (the name defaults to the id)", *pro, want)
	}
	named, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "n", Name: "Named one"})
	noErr(t, "CreateTenant n", err)
	if want := (client.Tenant{ID: "n", Name: "Named one", CreatedAt: epoch}); *named != want {
		t.Fatalf("CreateTenant n = %+v, want %+v", *named, want)
	}

	list, err := e.admin.Tenants(ctx)
	noErr(t, "Tenants", err)
	want := []client.Tenant{
		{ID: "a", Name: "Tenant a", CreatedAt: epoch},
		{ID: "b", Name: "Tenant b", CreatedAt: epoch},
		{ID: "n", Name: "Named one", CreatedAt: epoch},
		{ID: "p", Name: "p", Plan: "pro", CreatedAt: epoch},
	}
	if !slices.Equal(list, want) {
		t.Fatalf("Tenants = %+v, want %+v", list, want)
	}
	// A service token may list tenants too.
	list, err = e.service.Tenants(ctx)
	noErr(t, "Tenants as service", err)
	if len(list) != 4 {
		t.Fatalf("Tenants as service = %+v", list)
	}

	got, err := e.admin.Tenant(ctx, "p")
	noErr(t, "Tenant p", err)
	if *got != *pro {
		t.Fatalf("Tenant p = %+v, want %+v", *got, *pro)
	}
	own, err := e.tenantA.Tenant(ctx, "a")
	noErr(t, "Tenant a as tenant a", err)
	if own.ID != "a" || own.Name != "Tenant a" {
		t.Fatalf("Tenant a = %+v", own)
	}

	noErr(t, "DeleteTenant n", e.admin.DeleteTenant(ctx, "n"))
	_, err = e.admin.Tenant(ctx, "n")
	wantProblem(t, err, 404, "not_found")
	wantProblem(t, e.admin.DeleteTenant(ctx, "n"), 404, "not_found")
	list, err = e.admin.Tenants(ctx)
	noErr(t, "Tenants after delete", err)
	if len(list) != 3 {
		t.Fatalf("Tenants after delete = %+v", list)
	}

	// A tenant that owns consumers cannot be deleted until they are gone.
	_, err = e.service.PutConsumer(ctx, "p", "v1", volume(4), client.PutOptions{})
	noErr(t, "PutConsumer p/v1", err)
	wantProblem(t, e.admin.DeleteTenant(ctx, "p"), 409, "conflict")
	noErr(t, "DeleteConsumer p/v1", e.service.DeleteConsumer(ctx, "p", "v1", client.DeleteOptions{}))
	noErr(t, "DeleteTenant p", e.admin.DeleteTenant(ctx, "p"))
}

func findResource(t *testing.T, q *client.Quotas, name string) client.ResourceQuota {
	t.Helper()
	for _, r := range q.Resources {
		if r.Resource == name {
			return r
		}
	}
	t.Fatalf("no resource %s in %+v", name, q.Resources)
	return client.ResourceQuota{}
}

func findLimit(t *testing.T, q *client.Quotas, kind, limit string) client.Limit {
	t.Helper()
	for _, l := range q.Limits {
		if l.Kind == kind && l.Limit == limit {
			return l
		}
	}
	t.Fatalf("no limit %s.%s in %+v", kind, limit, q.Limits)
	return client.Limit{}
}

func TestQuotasSetQuotaSetLimit(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	q, err := e.tenantA.Quotas(ctx, "a")
	noErr(t, "Quotas a", err)
	if q.Tenant != "a" || q.Region != "local" || len(q.Resources) != 10 {
		t.Fatalf("Quotas a = %+v", q)
	}
	wantRes := map[string]client.ResourceQuota{
		"compute.instances":      {Resource: "compute.instances", Hard: 10, Available: 10, Source: "catalog", Requestable: client.Range{Min: 1, Max: 100}},
		"compute.live_memory_mb": {Resource: "compute.live_memory_mb", Unit: "MB", Hard: 2048, Available: 2048, Source: "catalog", Requestable: client.Range{Min: 16, Max: 65536}},
		"compute.volumes":        {Resource: "compute.volumes", Hard: 10, Available: 10, Source: "catalog", Requestable: client.Range{Min: 0, Max: 100}},
		"dcs.ram_mb":             {Resource: "dcs.ram_mb", Unit: "MB", Hard: 819200, Available: 819200, Source: "catalog", Requestable: client.Range{Min: 1024, Max: 819200}},
	}
	for name, want := range wantRes {
		if got := findResource(t, q, name); got != want {
			t.Errorf("Quotas a %s = %+v, want %+v", name, got, want)
		}
	}
	wantLimits := []client.Limit{
		{Kind: "compute.instance", Limit: "memory_mb", Min: 16, Max: 2048},
		{Kind: "compute.instance", Limit: "vcpus", Min: 1, Max: 8},
		{Kind: "compute.volume", Limit: "size_mb", Min: 2, Max: 1024},
		{Kind: "compute.service_group", Limit: "autoscale_size", Min: 1, Max: 1},
		{Kind: "dcs.instance", Limit: "capacity_mb", Min: 128, Max: 1048576},
	}
	for _, want := range wantLimits {
		if got := findLimit(t, q, want.Kind, want.Limit); got != want {
			t.Errorf("limit %s.%s = %+v, want %+v", want.Kind, want.Limit, got, want)
		}
	}

	// A plan's defaults show through.
	_, err = e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "f", Plan: "free"})
	noErr(t, "CreateTenant f", err)
	fq, err := e.service.Quotas(ctx, "f")
	noErr(t, "Quotas f", err)
	if r := findResource(t, fq, "compute.instances"); r.Hard != 2 || r.Source != "plan" {
		t.Errorf("free compute.instances = %+v, want hard 2 from the plan", r)
	}
	if l := findLimit(t, fq, "compute.instance", "memory_mb"); l.Max != 512 {
		t.Errorf("free memory_mb limit = %+v, want max 512", l)
	}

	// SetQuota answers the resource's new row.
	rq, err := e.admin.SetQuota(ctx, "a", "compute.live_memory_mb", client.SetQuotaRequest{Hard: ptr[int64](4096), Requestable: &client.Range{Min: 1, Max: 8192}})
	noErr(t, "SetQuota", err)
	if want := (client.ResourceQuota{Resource: "compute.live_memory_mb", Unit: "MB", Hard: 4096, Available: 4096, Source: "override", Requestable: client.Range{Min: 1, Max: 8192}}); *rq != want {
		t.Fatalf("SetQuota = %+v, want %+v", *rq, want)
	}
	_, err = e.service.PutConsumer(ctx, "a", "i1", instance(512, "running"), client.PutOptions{})
	noErr(t, "PutConsumer", err)
	rq, err = e.admin.SetQuota(ctx, "a", "compute.live_memory_mb", client.SetQuotaRequest{Hard: ptr[int64](256)})
	noErr(t, "SetQuota below usage", err)
	if rq.Hard != 256 || rq.Used != 512 || !rq.OverQuota || rq.Requestable != (client.Range{Min: 1, Max: 8192}) {
		t.Fatalf("SetQuota below usage = %+v, want hard 256, used 512, over quota, requestable kept", *rq)
	}

	lim, err := e.admin.SetLimit(ctx, "a", "compute.instance", "memory_mb", client.SetLimitRequest{Min: ptr[int64](32), Max: ptr[int64](64)})
	noErr(t, "SetLimit", err)
	if want := (client.Limit{Kind: "compute.instance", Limit: "memory_mb", Min: 32, Max: 64}); *lim != want {
		t.Fatalf("SetLimit = %+v, want %+v", *lim, want)
	}

	q, err = e.admin.Quotas(ctx, "a")
	noErr(t, "Quotas a after changes", err)
	if r := findResource(t, q, "compute.live_memory_mb"); r.Hard != 256 || r.Used != 512 || !r.OverQuota {
		t.Errorf("live_memory_mb after changes = %+v", r)
	}
	if r := findResource(t, q, "compute.live_instances"); r.Used != 1 || r.OverQuota {
		t.Errorf("live_instances after changes = %+v", r)
	}
	if l := findLimit(t, q, "compute.instance", "memory_mb"); l.Min != 32 || l.Max != 64 {
		t.Errorf("memory_mb limit after SetLimit = %+v", l)
	}
	// Tenant b is untouched.
	bq, err := e.tenantB.Quotas(ctx, "b")
	noErr(t, "Quotas b", err)
	if r := findResource(t, bq, "compute.live_memory_mb"); r.Hard != 2048 || r.Used != 0 {
		t.Errorf("b live_memory_mb = %+v", r)
	}
}

func TestPutConsumerLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	wantFP := map[string]int64{
		"compute.instances": 1, "compute.live_instances": 1, "compute.live_memory_mb": 256, "compute.live_vcpus": 1,
	}

	// A dry run answers what would happen and changes nothing.
	dry, err := e.service.PutConsumer(ctx, "a", "i1", instance(256, "running"), client.PutOptions{DryRun: true})
	noErr(t, "dry run", err)
	if !dry.DryRun || !dry.Created || dry.Consumer != "i1" || !maps.Equal(nonZero(dry.Usage), wantFP) {
		t.Fatalf("dry run = %+v", dry)
	}
	_, err = e.admin.Consumer(ctx, "a", "i1")
	wantProblem(t, err, 404, "not_found")

	c, err := e.service.PutConsumer(ctx, "a", "i1", instance(256, "running"), client.PutOptions{})
	noErr(t, "create", err)
	if c.Tenant != "a" || c.Consumer != "i1" || c.Kind != "compute.instance" || c.State != "running" ||
		c.Generation != 1 || !c.Created || c.DryRun || c.ExpiresAt != nil ||
		!c.CreatedAt.Equal(epoch) || !c.UpdatedAt.Equal(epoch) {
		t.Fatalf("create = %+v", c)
	}
	if want := map[string]int64{"memory_mb": 256, "vcpus": 1}; !maps.Equal(c.Attributes, want) {
		t.Errorf("attributes = %v, want %v (vcpus defaults to 1)", c.Attributes, want)
	}
	if !maps.Equal(footprint(c), wantFP) {
		t.Errorf("footprint = %v, want %v", c.Footprint, wantFP)
	}
	if !maps.Equal(nonZero(c.Usage), wantFP) {
		t.Errorf("usage = %v, want %v", c.Usage, wantFP)
	}

	// The same put again is harmless: not created, same generation.
	again, err := e.service.PutConsumer(ctx, "a", "i1", instance(256, "running"), client.PutOptions{})
	noErr(t, "repeat", err)
	if again.Created || again.Generation != 1 {
		t.Fatalf("repeat = %+v", again)
	}

	// If-Match at the right generation: stopping frees live usage.
	stopped, err := e.service.PutConsumer(ctx, "a", "i1", instance(256, "stopped"), client.PutOptions{IfMatch: 1})
	noErr(t, "If-Match 1", err)
	if stopped.Generation != 2 || stopped.State != "stopped" || stopped.Created {
		t.Fatalf("stopped = %+v", stopped)
	}
	if want := map[string]int64{"compute.instances": 1}; !maps.Equal(nonZero(stopped.Usage), want) || !maps.Equal(footprint(stopped), want) {
		t.Fatalf("stopped usage = %v footprint = %v, want %v", stopped.Usage, stopped.Footprint, want)
	}
	// If-Match at a stale generation is refused.
	_, err = e.service.PutConsumer(ctx, "a", "i1", instance(256, "running"), client.PutOptions{IfMatch: 1})
	wantProblem(t, err, 412, "generation_mismatch")
	// A dry run honours If-Match too.
	_, err = e.service.PutConsumer(ctx, "a", "i1", instance(256, "running"), client.PutOptions{IfMatch: 1, DryRun: true})
	wantProblem(t, err, 412, "generation_mismatch")

	// Reads: no write-only fields.
	got, err := e.tenantA.Consumer(ctx, "a", "i1")
	noErr(t, "Consumer", err)
	if got.State != "stopped" || got.Generation != 2 || got.Usage != nil || got.Created || got.DryRun ||
		!maps.Equal(got.Attributes, map[string]int64{"memory_mb": 256, "vcpus": 1}) {
		t.Fatalf("Consumer = %+v", got)
	}

	// A TTL makes a reservation that expires TTL after now.
	res, err := e.service.PutConsumer(ctx, "a", "r1", client.PutConsumerRequest{
		Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 8}, TTLSeconds: 600,
	}, client.PutOptions{})
	noErr(t, "reservation", err)
	wantExp := epoch.Add(600 * time.Second)
	if res.ExpiresAt == nil || !res.ExpiresAt.Equal(wantExp) || !res.Created {
		t.Fatalf("reservation = %+v, want expires_at %v", res, wantExp)
	}
	if res.Usage["compute.volumes"] != 1 || res.Usage["compute.total_volume_mb"] != 8 {
		t.Fatalf("reservation usage = %v", res.Usage)
	}
	got, err = e.admin.Consumer(ctx, "a", "r1")
	noErr(t, "Consumer r1", err)
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(wantExp) {
		t.Fatalf("Consumer r1 expires_at = %v, want %v", got.ExpiresAt, wantExp)
	}
	// Confirming it (no TTL) makes it permanent.
	conf, err := e.service.PutConsumer(ctx, "a", "r1", volume(8), client.PutOptions{IfMatch: 1})
	noErr(t, "confirm", err)
	if conf.ExpiresAt != nil || conf.Generation != 2 {
		t.Fatalf("confirmed = %+v", conf)
	}

	// DeleteConsumer: dry run, stale If-Match, right If-Match, gone.
	noErr(t, "delete dry run", e.service.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{DryRun: true}))
	if _, err := e.admin.Consumer(ctx, "a", "i1"); err != nil {
		t.Fatalf("a dry-run delete deleted: %v", err)
	}
	wantProblem(t, e.service.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{IfMatch: 7}), 412, "generation_mismatch")
	noErr(t, "delete", e.service.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{IfMatch: 2}))
	_, err = e.admin.Consumer(ctx, "a", "i1")
	wantProblem(t, err, 404, "not_found")
	wantProblem(t, e.service.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{}), 404, "not_found")
	noErr(t, "delete r1", e.admin.DeleteConsumer(ctx, "a", "r1", client.DeleteOptions{}))

	q, err := e.admin.Quotas(ctx, "a")
	noErr(t, "Quotas", err)
	for _, r := range q.Resources {
		if r.Used != 0 {
			t.Errorf("%s used %d after every consumer is deleted", r.Resource, r.Used)
		}
	}
}

func TestConsumersQuery(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for i := range 7 {
		state := "running"
		if i%2 == 1 {
			state = "stopped"
		}
		_, err := e.service.PutConsumer(ctx, "a", fmt.Sprintf("i%d", i), instance(16, state), client.PutOptions{})
		noErr(t, "PutConsumer", err)
	}
	_, err := e.service.PutConsumer(ctx, "a", "v1", volume(8), client.PutOptions{})
	noErr(t, "PutConsumer v1", err)
	_, err = e.service.PutConsumer(ctx, "b", "other", volume(8), client.PutOptions{})
	noErr(t, "PutConsumer b", err)

	for _, tc := range []struct {
		name string
		q    client.ConsumerQuery
		want string
	}{
		{"all", client.ConsumerQuery{}, "i0,i1,i2,i3,i4,i5,i6,v1"},
		{"kind", client.ConsumerQuery{Kind: "compute.volume"}, "v1"},
		{"state", client.ConsumerQuery{State: "stopped"}, "i1,i3,i5"},
		{"kind and state", client.ConsumerQuery{Kind: "compute.instance", State: "running"}, "i0,i2,i4,i6"},
		{"no match", client.ConsumerQuery{Kind: "dcs.instance"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := e.tenantA.Consumers(t.Context(), "a", tc.q)
			noErr(t, "Consumers", err)
			if got := consumerIDs(l.Consumers); got != tc.want || l.NextCursor != "" {
				t.Fatalf("Consumers(%+v) = %q (next %q), want %q", tc.q, got, l.NextCursor, tc.want)
			}
			for _, c := range l.Consumers {
				if c.Tenant != "a" || c.Generation != 1 || c.Usage != nil {
					t.Fatalf("listed consumer = %+v", c)
				}
			}
		})
	}

	// Paging with Limit and Cursor visits every consumer once.
	var pages []string
	q := client.ConsumerQuery{Kind: "compute.instance", Limit: 3}
	for {
		l, err := e.service.Consumers(ctx, "a", q)
		noErr(t, "Consumers page", err)
		pages = append(pages, consumerIDs(l.Consumers))
		if l.NextCursor == "" {
			break
		}
		if len(pages) > 5 {
			t.Fatalf("paging does not end: %v", pages)
		}
		q.Cursor = l.NextCursor
	}
	if want := []string{"i0,i1,i2", "i3,i4,i5", "i6"}; !slices.Equal(pages, want) {
		t.Fatalf("pages = %q, want %q", pages, want)
	}

	for _, q := range []client.ConsumerQuery{
		{Kind: "compute.gpu"},
		{Cursor: "%%%"},
		{Limit: 1001},
	} {
		_, err := e.admin.Consumers(ctx, "a", q)
		wantProblem(t, err, 400, "invalid_request")
	}
	_, err = e.admin.Consumers(ctx, "zz", client.ConsumerQuery{})
	wantProblem(t, err, 404, "not_found")
}

func TestClaims(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	vol := func(tenant, id string) client.Operation {
		return client.Operation{Op: "put", Tenant: tenant, Consumer: id, Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 4}}
	}

	// A dry run answers every result and applies none.
	dry, err := e.service.Claims(ctx, client.ClaimsRequest{DryRun: true, Operations: []client.Operation{vol("a", "v1"), vol("b", "v1")}})
	noErr(t, "dry run", err)
	if !dry.DryRun || len(dry.Results) != 2 || !dry.Results[0].DryRun || !dry.Results[1].Created || dry.Results[1].Tenant != "b" {
		t.Fatalf("dry run = %+v", dry)
	}
	if l, err := e.admin.Consumers(ctx, "a", client.ConsumerQuery{}); err != nil || len(l.Consumers) != 0 {
		t.Fatalf("a dry-run batch applied: %+v %v", l, err)
	}

	res, err := e.service.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{vol("a", "v1"), vol("b", "v1"), vol("b", "v2")}})
	noErr(t, "claims", err)
	if res.DryRun || len(res.Results) != 3 {
		t.Fatalf("claims = %+v", res)
	}
	for i, want := range []struct {
		tenant, consumer string
		volumes          int64
	}{{"a", "v1", 1}, {"b", "v1", 1}, {"b", "v2", 2}} {
		r := res.Results[i]
		if r.Tenant != want.tenant || r.Consumer != want.consumer || !r.Created || r.Generation != 1 ||
			r.Kind != "compute.volume" || r.Usage["compute.volumes"] != want.volumes {
			t.Errorf("result %d = %+v, want %+v", i, r, want)
		}
	}

	// A delete with if_match answers the consumer as it was.
	res, err = e.service.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{
		{Op: "delete", Tenant: "a", Consumer: "v1", IfMatch: 1},
	}})
	noErr(t, "delete", err)
	if r := res.Results[0]; r.Consumer != "v1" || r.Usage["compute.volumes"] != 0 {
		t.Fatalf("delete result = %+v", r)
	}

	// A refused batch applies nothing and names the failing operation.
	_, err = e.admin.SetQuota(ctx, "b", "compute.volumes", client.SetQuotaRequest{Hard: ptr[int64](2)})
	noErr(t, "SetQuota", err)
	_, err = e.service.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{vol("a", "v3"), vol("b", "v3")}})
	ce := wantProblem(t, err, 409, "quota_exceeded")
	if ce.Problem.Operation == nil || *ce.Problem.Operation != 1 {
		t.Fatalf("failing operation = %v, want 1", ce.Problem.Operation)
	}
	wantV := []client.Violation{{Tenant: "b", Resource: "compute.volumes", Used: 2, Hard: 2, Requested: 1, Available: 0}}
	if !slices.Equal(ce.Problem.Violations, wantV) {
		t.Fatalf("violations = %+v, want %+v", ce.Problem.Violations, wantV)
	}
	if _, err := e.admin.Consumer(ctx, "a", "v3"); !client.IsCode(err, "not_found") {
		t.Fatalf("a refused batch applied its first operation: %v", err)
	}

	_, err = e.service.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{vol("a", "v4"), {Op: "frob", Tenant: "a", Consumer: "x"}}})
	ce = wantProblem(t, err, 400, "invalid_request")
	if ce.Problem.Operation == nil || *ce.Problem.Operation != 1 {
		t.Fatalf("invalid operation index = %v, want 1", ce.Problem.Operation)
	}
	_, err = e.service.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{
		{Op: "delete", Tenant: "b", Consumer: "v1", IfMatch: 1},
		{Op: "delete", Tenant: "b", Consumer: "v2", IfMatch: 9},
	}})
	ce = wantProblem(t, err, 412, "generation_mismatch")
	if ce.Problem.Operation == nil || *ce.Problem.Operation != 1 {
		t.Fatalf("mismatched operation index = %v, want 1", ce.Problem.Operation)
	}
	if _, err := e.admin.Consumer(ctx, "b", "v1"); err != nil {
		t.Fatalf("a refused batch applied its first delete: %v", err)
	}
	_, err = e.service.Claims(ctx, client.ClaimsRequest{})
	wantProblem(t, err, 400, "invalid_request")
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	ci, err := e.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "service", Name: "ci"})
	noErr(t, "CreateToken ci", err)
	if ci.Name != "ci" || ci.Role != "service" || ci.Tenant != "" || ci.Secret == "" || !ci.CreatedAt.Equal(epoch) || ci.RevokedAt != nil {
		t.Fatalf("CreateToken ci = %+v", ci)
	}
	ta2, err := e.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "tenant", Tenant: "a", Name: "ta2"})
	noErr(t, "CreateToken ta2", err)
	if ta2.Role != "tenant" || ta2.Tenant != "a" || ta2.Secret == "" || ta2.Secret == ci.Secret {
		t.Fatalf("CreateToken ta2 = %+v", ta2)
	}

	list, err := e.admin.Tokens(ctx)
	noErr(t, "Tokens", err)
	type row struct{ name, role, tenant string }
	var rows []row
	for _, tk := range list {
		if tk.Secret != "" {
			t.Errorf("listed token %s shows its secret", tk.Name)
		}
		if tk.RevokedAt != nil {
			t.Errorf("token %s is revoked", tk.Name)
		}
		rows = append(rows, row{tk.Name, tk.Role, tk.Tenant})
	}
	wantRows := []row{
		{"admin", "admin", ""}, {"ci", "service", ""}, {"svc", "service", ""},
		{"ta", "tenant", "a"}, {"ta2", "tenant", "a"}, {"tb", "tenant", "b"},
	}
	if !slices.Equal(rows, wantRows) {
		t.Fatalf("Tokens = %+v, want %+v", rows, wantRows)
	}

	// The new secret works, until it is revoked.
	ciClient := client.New(e.srv.URL, client.WithToken(ci.Secret))
	_, err = ciClient.Tenants(ctx)
	noErr(t, "Tenants with the new token", err)
	noErr(t, "RevokeToken ci", e.admin.RevokeToken(ctx, "ci"))
	_, err = ciClient.Tenants(ctx)
	wantProblem(t, err, 401, "unauthorized")
	list, err = e.admin.Tokens(ctx)
	noErr(t, "Tokens after revoke", err)
	i := slices.IndexFunc(list, func(tk client.Token) bool { return tk.Name == "ci" })
	if i < 0 || list[i].RevokedAt == nil || !list[i].RevokedAt.Equal(epoch) {
		t.Fatalf("revoked token listed as %+v", list)
	}
	wantProblem(t, e.admin.RevokeToken(ctx, "nope"), 404, "not_found")

	_, err = e.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "service", Name: "svc"})
	wantProblem(t, err, 409, "conflict")
	_, err = e.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "root", Name: "x"})
	wantProblem(t, err, 400, "invalid_request")
	_, err = e.admin.CreateToken(ctx, client.CreateTokenRequest{Role: "tenant", Tenant: "zz", Name: "x"})
	wantProblem(t, err, 404, "not_found")
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	k1, err := e.admin.CreateCredential(ctx, "a")
	noErr(t, "CreateCredential 1", err)
	if k1.AccessKey == "" || k1.SecretKey == "" || k1.Tenant != "a" || !k1.CreatedAt.Equal(epoch) || k1.RevokedAt != nil {
		t.Fatalf("CreateCredential = %+v", k1)
	}
	k2, err := e.admin.CreateCredential(ctx, "a")
	noErr(t, "CreateCredential 2", err)
	if k2.AccessKey == k1.AccessKey || k2.SecretKey == k1.SecretKey {
		t.Fatalf("two credentials share keys: %+v %+v", k1, k2)
	}

	list, err := e.admin.Credentials(ctx, "a")
	noErr(t, "Credentials a", err)
	var aks []string
	for _, c := range list {
		if c.SecretKey != "" {
			t.Errorf("listed credential %s shows its secret key", c.AccessKey)
		}
		if c.Tenant != "a" || c.RevokedAt != nil || !c.CreatedAt.Equal(epoch) {
			t.Errorf("listed credential = %+v", c)
		}
		aks = append(aks, c.AccessKey)
	}
	slices.Sort(aks)
	wantAKs := []string{k1.AccessKey, k2.AccessKey}
	slices.Sort(wantAKs)
	if !slices.Equal(aks, wantAKs) {
		t.Fatalf("Credentials a = %v, want %v", aks, wantAKs)
	}
	if l, err := e.admin.Credentials(ctx, "b"); err != nil || len(l) != 0 {
		t.Fatalf("Credentials b = %+v, %v; want none", l, err)
	}
	// Access keys are not listed among tokens.
	toks, err := e.admin.Tokens(ctx)
	noErr(t, "Tokens", err)
	for _, tk := range toks {
		if tk.Name == k1.AccessKey || tk.Name == k2.AccessKey {
			t.Fatalf("access key listed as a token: %+v", tk)
		}
	}

	// An access key is revoked only under its own tenant.
	wantProblem(t, e.admin.RevokeCredential(ctx, "b", k1.AccessKey), 404, "not_found")
	noErr(t, "RevokeCredential", e.admin.RevokeCredential(ctx, "a", k1.AccessKey))
	list, err = e.admin.Credentials(ctx, "a")
	noErr(t, "Credentials a after revoke", err)
	for _, c := range list {
		revoked := c.RevokedAt != nil
		if revoked != (c.AccessKey == k1.AccessKey) {
			t.Errorf("after revoking %s: %+v", k1.AccessKey, c)
		}
	}
	wantProblem(t, e.admin.RevokeCredential(ctx, "a", "NOPE"), 404, "not_found")
	_, err = e.admin.Credentials(ctx, "zz")
	wantProblem(t, err, 404, "not_found")
	_, err = e.admin.CreateCredential(ctx, "zz")
	wantProblem(t, err, 404, "not_found")
	_, err = e.tenantA.Credentials(ctx, "a")
	wantProblem(t, err, 403, "forbidden")
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, err := e.service.PutConsumer(ctx, "a", "c1", instance(16, "stopped"), client.PutOptions{})
	noErr(t, "PutConsumer a", err)
	_, err = e.service.PutConsumer(ctx, "b", "c1", instance(16, "stopped"), client.PutOptions{})
	noErr(t, "PutConsumer b", err)

	all, err := e.admin.Events(ctx, client.EventQuery{Limit: 1000})
	noErr(t, "Events", err)
	if len(all.Events) == 0 || all.Next != all.Events[len(all.Events)-1].Seq {
		t.Fatalf("Events = %+v", all)
	}
	types := map[string]int{}
	for i, ev := range all.Events {
		types[ev.Type]++
		if i > 0 && ev.Seq <= all.Events[i-1].Seq {
			t.Fatalf("events out of order: %+v", all.Events)
		}
		if !ev.Time.Equal(epoch) {
			t.Errorf("event %d time = %v", ev.Seq, ev.Time)
		}
	}
	if types["tenant.create"] != 2 || types["token.create"] < 4 || types["consumer.put"] != 2 {
		t.Fatalf("event types = %v", types)
	}
	put := all.Events[len(all.Events)-1]
	if put.Type != "consumer.put" || put.Tenant != "b" || put.Subject != "c1" || put.Actor != "svc" || put.Role != "service" {
		t.Fatalf("last event = %+v", put)
	}
	var after map[string]any
	if err := json.Unmarshal(put.After, &after); err != nil || after["kind"] != "compute.instance" {
		t.Fatalf("last event's after = %s (%v)", put.After, err)
	}

	// Paging with After and Limit reads the same ledger.
	var seqs []int64
	q := client.EventQuery{Limit: 2}
	for {
		page, err := e.admin.Events(ctx, q)
		noErr(t, "Events page", err)
		if len(page.Events) > 2 {
			t.Fatalf("page of %d events with limit 2", len(page.Events))
		}
		if len(page.Events) == 0 {
			if page.Next != q.After {
				t.Fatalf("empty page next = %d, want %d", page.Next, q.After)
			}
			break
		}
		for _, ev := range page.Events {
			seqs = append(seqs, ev.Seq)
		}
		q.After = page.Next
	}
	var allSeqs []int64
	for _, ev := range all.Events {
		allSeqs = append(allSeqs, ev.Seq)
	}
	if !slices.Equal(seqs, allSeqs) {
		t.Fatalf("paged seqs = %v, want %v", seqs, allSeqs)
	}

	// The tenant filter, and a tenant token that sees only its own.
	for name, c := range map[string]*client.Client{"admin": e.admin, "tenant": e.tenantA} {
		q := client.EventQuery{Limit: 1000}
		if name == "admin" {
			q.Tenant = "a"
		}
		l, err := c.Events(ctx, q)
		noErr(t, "Events as "+name, err)
		if len(l.Events) == 0 {
			t.Fatalf("no events of tenant a for %s", name)
		}
		for _, ev := range l.Events {
			if ev.Tenant != "a" {
				t.Fatalf("%s sees %+v for tenant a", name, ev)
			}
		}
	}
	_, err = e.tenantA.Events(ctx, client.EventQuery{Tenant: "b"})
	wantProblem(t, err, 404, "not_found")
	_, err = e.admin.Events(ctx, client.EventQuery{Limit: 1001})
	wantProblem(t, err, 400, "invalid_request")
}

// --- Every error code, through the typed error -------------------------------

func TestErrorCodes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, err := e.admin.SetQuota(ctx, "a", "compute.live_instances", client.SetQuotaRequest{Hard: ptr[int64](1)})
	noErr(t, "SetQuota", err)
	_, err = e.service.PutConsumer(ctx, "a", "i1", instance(64, "running"), client.PutOptions{})
	noErr(t, "PutConsumer", err)

	noToken := client.New(e.srv.URL)
	badToken := client.New(e.srv.URL, client.WithToken("bm9wZTpub3Bl"))

	for _, tc := range []struct {
		name   string
		call   func() error
		status int
		code   string
	}{
		{"invalid: unknown plan", func() error {
			_, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "x", Plan: "gold"})
			return err
		}, 400, "invalid_request"},
		{"invalid: unknown kind", func() error {
			_, err := e.service.PutConsumer(ctx, "a", "g", client.PutConsumerRequest{Kind: "compute.gpu"}, client.PutOptions{})
			return err
		}, 400, "invalid_request"},
		{"invalid: negative ttl", func() error {
			_, err := e.service.PutConsumer(ctx, "a", "v", client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 4}, TTLSeconds: -1}, client.PutOptions{})
			return err
		}, 400, "invalid_request"},
		{"invalid: limit without max", func() error {
			_, err := e.admin.SetLimit(ctx, "a", "compute.instance", "memory_mb", client.SetLimitRequest{Min: ptr[int64](1)})
			return err
		}, 400, "invalid_request"},
		{"invalid: quota without hard", func() error {
			_, err := e.admin.SetQuota(ctx, "a", "compute.instances", client.SetQuotaRequest{})
			return err
		}, 400, "invalid_request"},
		{"not found: tenant", func() error { _, err := e.admin.Tenant(ctx, "nope"); return err }, 404, "not_found"},
		{"not found: consumer", func() error { _, err := e.admin.Consumer(ctx, "a", "nope"); return err }, 404, "not_found"},
		{"not found: quotas of unknown tenant", func() error { _, err := e.admin.Quotas(ctx, "nope"); return err }, 404, "not_found"},
		{"not found: tenant token reading another tenant", func() error { _, err := e.tenantA.Tenant(ctx, "b"); return err }, 404, "not_found"},
		{"not found: tenant token reading another tenant's consumer", func() error { _, err := e.tenantB.Consumer(ctx, "a", "i1"); return err }, 404, "not_found"},
		{"conflict: tenant exists", func() error {
			_, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "a"})
			return err
		}, 409, "conflict"},
		{"conflict: consumer changes kind", func() error {
			_, err := e.service.PutConsumer(ctx, "a", "i1", volume(4), client.PutOptions{})
			return err
		}, 409, "conflict"},
		{"conflict: tenant owns consumers", func() error { return e.admin.DeleteTenant(ctx, "a") }, 409, "conflict"},
		{"generation mismatch: put", func() error {
			_, err := e.service.PutConsumer(ctx, "a", "i1", instance(64, "stopped"), client.PutOptions{IfMatch: 5})
			return err
		}, 412, "generation_mismatch"},
		{"generation mismatch: delete", func() error {
			return e.service.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{IfMatch: 5})
		}, 412, "generation_mismatch"},
		{"unauthorized: no token", func() error { _, err := noToken.Tenants(ctx); return err }, 401, "unauthorized"},
		{"unauthorized: bad token", func() error { _, err := badToken.Tenants(ctx); return err }, 401, "unauthorized"},
		{"unauthorized: bad token on any route", func() error { _, err := badToken.Events(ctx, client.EventQuery{}); return err }, 401, "unauthorized"},
		{"forbidden: tenant creates a tenant", func() error {
			_, err := e.tenantA.CreateTenant(ctx, client.CreateTenantRequest{ID: "x"})
			return err
		}, 403, "forbidden"},
		{"forbidden: tenant lists tenants", func() error { _, err := e.tenantA.Tenants(ctx); return err }, 403, "forbidden"},
		{"forbidden: tenant sets its own quota", func() error {
			_, err := e.tenantA.SetQuota(ctx, "a", "compute.instances", client.SetQuotaRequest{Hard: ptr[int64](99)})
			return err
		}, 403, "forbidden"},
		{"forbidden: tenant writes its own consumer", func() error {
			_, err := e.tenantA.PutConsumer(ctx, "a", "i9", instance(16, "stopped"), client.PutOptions{})
			return err
		}, 403, "forbidden"},
		{"forbidden: tenant claims for another tenant", func() error {
			_, err := e.tenantA.Claims(ctx, client.ClaimsRequest{Operations: []client.Operation{{Op: "delete", Tenant: "b", Consumer: "x"}}})
			return err
		}, 403, "forbidden"},
		{"forbidden: tenant lists tokens", func() error { _, err := e.tenantA.Tokens(ctx); return err }, 403, "forbidden"},
		{"forbidden: service creates a token", func() error {
			_, err := e.service.CreateToken(ctx, client.CreateTokenRequest{Role: "admin", Name: "mine"})
			return err
		}, 403, "forbidden"},
		{"forbidden: service revokes a token", func() error { return e.service.RevokeToken(ctx, "svc") }, 403, "forbidden"},
		{"forbidden: service sets a limit", func() error {
			_, err := e.service.SetLimit(ctx, "a", "compute.instance", "memory_mb", client.SetLimitRequest{Min: ptr[int64](1), Max: ptr[int64](2)})
			return err
		}, 403, "forbidden"},
		{"forbidden: service deletes a tenant", func() error { return e.service.DeleteTenant(ctx, "b") }, 403, "forbidden"},
		{"forbidden: service creates a credential", func() error { _, err := e.service.CreateCredential(ctx, "a"); return err }, 403, "forbidden"},
		{"forbidden: service revokes a credential", func() error { return e.service.RevokeCredential(ctx, "a", "AK") }, 403, "forbidden"},
		{"body too large", func() error {
			_, err := e.service.PutConsumer(ctx, "a", "big", client.PutConsumerRequest{Kind: strings.Repeat("x", 1<<20)}, client.PutOptions{})
			return err
		}, 413, "body_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			ce := wantProblem(t, err, tc.status, tc.code)
			p := ce.Problem
			if want := "https://allot.dev/problems/" + strings.ReplaceAll(tc.code, "_", "-"); p.Type != want {
				t.Errorf("type = %q, want %q", p.Type, want)
			}
			if p.Title != http.StatusText(tc.status) {
				t.Errorf("title = %q, want %q", p.Title, http.StatusText(tc.status))
			}
			if p.Detail == "" {
				t.Errorf("problem without detail: %+v", p)
			}
			if msg := err.Error(); !strings.Contains(msg, p.Detail) {
				t.Errorf("Error() = %q, does not carry the detail %q", msg, p.Detail)
			}
			if len(p.Violations) != 0 || p.Operation != nil {
				t.Errorf("unexpected violations or operation: %+v", p)
			}
		})
	}

	// Nothing of that changed anything.
	l, err := e.admin.Consumers(ctx, "a", client.ConsumerQuery{})
	noErr(t, "Consumers", err)
	if consumerIDs(l.Consumers) != "i1" || l.Consumers[0].Generation != 1 {
		t.Fatalf("refused calls changed consumers: %+v", l.Consumers)
	}
}

func TestRefusalViolations(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, err := e.admin.SetQuota(ctx, "a", "compute.live_instances", client.SetQuotaRequest{Hard: ptr[int64](1)})
	noErr(t, "SetQuota", err)
	_, err = e.service.PutConsumer(ctx, "a", "i1", instance(64, "running"), client.PutOptions{})
	noErr(t, "PutConsumer", err)

	for _, tc := range []struct {
		name   string
		req    client.PutConsumerRequest
		status int
		code   string
		want   []client.Violation
	}{
		{"quota exceeded", instance(64, "running"), 409, "quota_exceeded",
			[]client.Violation{{Tenant: "a", Resource: "compute.live_instances", Used: 1, Hard: 1, Requested: 1, Available: 0}}},
		{"limit violation: too much memory", instance(4096, "stopped"), 422, "limit_violation",
			[]client.Violation{{Kind: "compute.instance", Attribute: "memory_mb", Value: 4096, Min: 16, Max: 2048}}},
		{"limit violation: too little memory", instance(8, "stopped"), 422, "limit_violation",
			[]client.Violation{{Kind: "compute.instance", Attribute: "memory_mb", Value: 8, Min: 16, Max: 2048}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dryRun := range []bool{false, true} {
				_, err := e.service.PutConsumer(t.Context(), "a", "i2", tc.req, client.PutOptions{DryRun: dryRun})
				ce := wantProblem(t, err, tc.status, tc.code)
				if !slices.Equal(ce.Problem.Violations, tc.want) {
					t.Fatalf("dry run %v: violations = %+v, want %+v", dryRun, ce.Problem.Violations, tc.want)
				}
			}
		})
	}

	// Several resources short at once: each is a violation.
	_, err = e.admin.SetQuota(ctx, "a", "compute.live_memory_mb", client.SetQuotaRequest{Hard: ptr[int64](100)})
	noErr(t, "SetQuota memory", err)
	_, err = e.service.PutConsumer(ctx, "a", "i2", instance(128, "running"), client.PutOptions{})
	ce := wantProblem(t, err, 409, "quota_exceeded")
	got := map[string]client.Violation{}
	for _, v := range ce.Problem.Violations {
		got[v.Resource] = v
	}
	want := map[string]client.Violation{
		"compute.live_instances": {Tenant: "a", Resource: "compute.live_instances", Used: 1, Hard: 1, Requested: 1, Available: 0},
		"compute.live_memory_mb": {Tenant: "a", Resource: "compute.live_memory_mb", Used: 64, Hard: 100, Requested: 128, Available: 36},
	}
	if !maps.Equal(got, want) || len(ce.Problem.Violations) != 2 {
		t.Fatalf("violations = %+v, want %+v", ce.Problem.Violations, want)
	}
}

func TestIsCodeAndErrorMessage(t *testing.T) {
	ce := &client.Error{Status: 409, Problem: client.Problem{Status: 409, Code: "conflict"}}
	for _, tc := range []struct {
		name string
		err  error
		code string
		want bool
	}{
		{"nil", nil, "conflict", false},
		{"plain error", errors.New("conflict"), "conflict", false},
		{"typed", ce, "conflict", true},
		{"typed, other code", ce, "not_found", false},
		{"wrapped", fmt.Errorf("creating: %w", ce), "conflict", true},
		{"joined", errors.Join(errors.New("x"), ce), "conflict", true},
		{"empty code", ce, "", false},
	} {
		if got := client.IsCode(tc.err, tc.code); got != tc.want {
			t.Errorf("%s: IsCode(%v, %q) = %v, want %v", tc.name, tc.err, tc.code, got, tc.want)
		}
	}
	if got := ce.Error(); got != "conflict (HTTP 409)" {
		t.Errorf("Error() without detail = %q", got)
	}
	withDetail := &client.Error{Status: 409, Problem: client.Problem{Code: "conflict", Detail: "tenant a exists"}}
	if got := withDetail.Error(); got != "conflict: tenant a exists (HTTP 409)" {
		t.Errorf("Error() with detail = %q", got)
	}
}

// --- Options -----------------------------------------------------------------

// recorder is an http.RoundTripper that records each request and its body.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, rawPath, query string
	header                 http.Header
	body                   []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.EscapedPath(), req.URL.RawQuery, req.Header.Clone(), body})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("no request went through the HTTP client")
	}
	return r.reqs[len(r.reqs)-1]
}

func TestWithTokenAndWithHTTPClient(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rec := &recorder{}
	c := client.New(e.srv.URL+"/", client.WithToken(e.srv.AdminToken), client.WithHTTPClient(&http.Client{Transport: rec}))

	_, err := c.Tenants(ctx)
	noErr(t, "Tenants", err)
	r := rec.last(t)
	if r.method != "GET" || r.rawPath != "/api/v1/tenants" || r.query != "" || len(r.body) != 0 {
		t.Fatalf("Tenants sent %+v (a trailing slash of the base URL is dropped)", r)
	}
	if got := r.header.Get("Authorization"); got != "Bearer "+e.srv.AdminToken {
		t.Fatalf("Authorization = %q", got)
	}
	if got := r.header.Get("Content-Type"); got != "" {
		t.Fatalf("a GET without body has Content-Type %q", got)
	}

	_, err = c.PutConsumer(ctx, "a", "i1", instance(64, "stopped"), client.PutOptions{})
	noErr(t, "PutConsumer", err)
	r = rec.last(t)
	if r.header.Get("If-Match") != "" || r.query != "" {
		t.Fatalf("a plain put sent If-Match %q, query %q", r.header.Get("If-Match"), r.query)
	}
	_, err = c.PutConsumer(ctx, "a", "i1", instance(64, "running"), client.PutOptions{DryRun: true, IfMatch: 1})
	noErr(t, "PutConsumer dry run", err)
	r = rec.last(t)
	if r.method != "PUT" || r.rawPath != "/api/v1/tenants/a/consumers/i1" || r.query != "dry_run=true" ||
		r.header.Get("If-Match") != `"1"` || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("PutConsumer sent %+v", r)
	}
	var sent client.PutConsumerRequest
	if err := json.Unmarshal(r.body, &sent); err != nil || sent.Kind != "compute.instance" || sent.State != "running" || sent.Attributes["memory_mb"] != 64 {
		t.Fatalf("PutConsumer body = %s (%v)", r.body, err)
	}
	noErr(t, "DeleteConsumer", c.DeleteConsumer(ctx, "a", "i1", client.DeleteOptions{DryRun: true, IfMatch: 1}))
	r = rec.last(t)
	if r.method != "DELETE" || r.query != "dry_run=true" || r.header.Get("If-Match") != `"1"` || len(r.body) != 0 {
		t.Fatalf("DeleteConsumer sent %+v", r)
	}

	_, err = c.Consumers(ctx, "a", client.ConsumerQuery{Kind: "compute.instance", State: "stopped", Limit: 5, Cursor: "aTA"})
	noErr(t, "Consumers", err)
	if r = rec.last(t); r.query != "cursor=aTA&kind=compute.instance&limit=5&state=stopped" {
		t.Fatalf("Consumers query = %q", r.query)
	}
	_, err = c.Events(ctx, client.EventQuery{Tenant: "a", After: 3, Limit: 7})
	noErr(t, "Events", err)
	if r = rec.last(t); r.rawPath != "/api/v1/events" || r.query != "after=3&limit=7&tenant=a" {
		t.Fatalf("Events sent %+v", r)
	}

	// Path segments are escaped, not spliced (slashes are refused before
	// sending: see segments_test.go).
	_, err = c.Tenant(ctx, "a?b#c")
	if err == nil {
		t.Fatal("Tenant(a?b#c) succeeded")
	}
	if r = rec.last(t); r.rawPath != "/api/v1/tenants/a%3Fb%23c" || r.query != "" {
		t.Fatalf("Tenant(a?b#c) sent path %q query %q", r.rawPath, r.query)
	}
	if _, ok := errors.AsType[*client.Error](err); !ok {
		t.Fatalf("Tenant(a?b#c) = %v, want a problem from the server", err)
	}

	// No WithToken: no Authorization header, and the server refuses.
	anon := client.New(e.srv.URL, client.WithHTTPClient(&http.Client{Transport: rec}))
	_, err = anon.Tenants(ctx)
	wantProblem(t, err, 401, "unauthorized")
	if r = rec.last(t); r.header.Get("Authorization") != "" {
		t.Fatalf("Authorization without WithToken = %q", r.header.Get("Authorization"))
	}

	// The last WithToken wins.
	c2 := client.New(e.srv.URL, client.WithToken("bm9wZTpub3Bl"), client.WithToken(e.srv.AdminToken))
	_, err = c2.Tenants(ctx)
	noErr(t, "Tenants with a replaced token", err)
}

// blockingServer answers nothing until the request's context ends; arrived
// receives one value per request that reached the handler.
func blockingServer(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	return srv.URL, ch
}

// within runs call and fails the test if it has not returned in d.
func within(t *testing.T, d time.Duration, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("the call hangs after %v", d)
		return nil
	}
}

func TestWithTimeout(t *testing.T) {
	url, _ := blockingServer(t)
	c := client.New(url, client.WithTimeout(50*time.Millisecond))
	start := time.Now()
	err := within(t, 20*time.Second, func() error { _, err := c.Tenants(t.Context()); return err })
	if err == nil {
		t.Fatal("a server slower than the timeout gave no error")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("err = %q, does not name the server %s", err, url)
	}
	if _, ok := errors.AsType[*client.Error](err); ok {
		t.Errorf("a timeout is a *client.Error: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", elapsed)
	}

	// Without a client timeout, the caller's deadline still bounds the call;
	// with a long one, the caller's shorter deadline wins.
	for _, opt := range []client.Option{client.WithTimeout(0), client.WithTimeout(time.Hour)} {
		c := client.New(url, opt)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := within(t, 20*time.Second, func() error { _, err := c.Quotas(ctx, "a"); return err })
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	}
}

func TestTimeoutWhileReadingTheBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		io.WriteString(w, `{"tenants":[`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := client.New(srv.URL, client.WithTimeout(50*time.Millisecond))
	err := within(t, 20*time.Second, func() error { _, err := c.Tenants(t.Context()); return err })
	if err == nil || !strings.Contains(err.Error(), "HTTP 200") {
		t.Fatalf("a body that stalls past the timeout: err = %v, want an error naming HTTP 200", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestContextCancellation(t *testing.T) {
	url, arrived := blockingServer(t)
	c := client.New(url)

	// Cancelled while the server is working on it.
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	err := within(t, 20*time.Second, func() error {
		_, err := c.PutConsumer(ctx, "a", "i1", instance(16, "running"), client.PutOptions{})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// Cancelled before the call: the server is never asked.
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	_, err = client.New(srv.URL).Tenants(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("a cancelled call reached the server %d times", hits.Load())
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := client.New(url, client.WithToken("t"))
	put := func() error {
		_, err := c.PutConsumer(t.Context(), "a", "b", volume(4), client.PutOptions{})
		return err
	}
	for name, call := range map[string]func() error{
		"Tenants":     func() error { _, err := c.Tenants(t.Context()); return err },
		"PutConsumer": put,
		"RevokeToken": func() error { return c.RevokeToken(t.Context(), "x") },
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s: no error from a closed server", name)
		}
		if !strings.Contains(err.Error(), url) {
			t.Errorf("%s: err = %q, does not name %s", name, err, url)
		}
		if _, ok := errors.AsType[*client.Error](err); ok {
			t.Errorf("%s: a connection failure is a *client.Error: %v", name, err)
		}
	}
}

// --- Malformed answers ---------------------------------------------------------

// calls runs every answer-decoding method of c and returns their errors.
func calls(ctx context.Context, c *client.Client) map[string]error {
	out := map[string]error{}
	_, out["CreateTenant"] = c.CreateTenant(ctx, client.CreateTenantRequest{ID: "x"})
	_, out["Tenants"] = c.Tenants(ctx)
	_, out["Tenant"] = c.Tenant(ctx, "a")
	_, out["Quotas"] = c.Quotas(ctx, "a")
	_, out["SetQuota"] = c.SetQuota(ctx, "a", "r", client.SetQuotaRequest{Hard: ptr[int64](1)})
	_, out["SetLimit"] = c.SetLimit(ctx, "a", "k", "l", client.SetLimitRequest{Min: ptr[int64](1), Max: ptr[int64](2)})
	_, out["PutConsumer"] = c.PutConsumer(ctx, "a", "c", volume(4), client.PutOptions{})
	_, out["Consumer"] = c.Consumer(ctx, "a", "c")
	_, out["Consumers"] = c.Consumers(ctx, "a", client.ConsumerQuery{})
	_, out["Claims"] = c.Claims(ctx, client.ClaimsRequest{})
	_, out["CreateToken"] = c.CreateToken(ctx, client.CreateTokenRequest{Name: "n"})
	_, out["Tokens"] = c.Tokens(ctx)
	_, out["CreateCredential"] = c.CreateCredential(ctx, "a")
	_, out["Credentials"] = c.Credentials(ctx, "a")
	_, out["Events"] = c.Events(ctx, client.EventQuery{})
	return out
}

// noBodyCalls are the methods that decode nothing from a 2xx answer.
func noBodyCalls(ctx context.Context, c *client.Client) map[string]error {
	return map[string]error{
		"DeleteTenant":     c.DeleteTenant(ctx, "a"),
		"DeleteConsumer":   c.DeleteConsumer(ctx, "a", "c", client.DeleteOptions{}),
		"RevokeToken":      c.RevokeToken(ctx, "n"),
		"RevokeCredential": c.RevokeCredential(ctx, "a", "AK"),
	}
}

func fixedServer(t *testing.T, status int, contentType, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A 2xx answer that is not the JSON the method expects is an error that says
// so and quotes the status; never a panic, never a nil error.
func TestMalformedSuccessAnswers(t *testing.T) {
	// Every field any answer type has, with a type none of them has.
	wrongTypes := `{"id":1,"name":2,"tenants":3,"tenant":4,"resources":5,"resource":6,"kind":7,"consumer":8,` +
		`"consumers":9,"results":10,"tokens":11,"access_key":12,"credentials":13,"events":14}`
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"not JSON", "text/plain", "hello, world"},
		{"HTML page", "text/html", "<!doctype html><html><body><h1>It works!</h1></body></html>"},
		{"empty", "application/json", ""},
		{"truncated", "application/json", `{"id":"a","name":"Ten`},
		{"truncated list", "application/json", `{"tenants":[{"id":"a"},`},
		{"array", "application/json", `[1,2,3]`},
		{"string", "application/json", `"ok"`},
		{"number", "application/json", `42`},
		{"fields of the wrong type", "application/json", wrongTypes},
		{"trailing garbage", "application/json", `{} garbage`},
		{"two values", "application/json", `{} {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client.New(fixedServer(t, 200, tc.contentType, tc.body))
			for method, err := range calls(t.Context(), c) {
				if err == nil {
					t.Errorf("%s: nil error for a 200 answer %q", method, tc.body)
					continue
				}
				if !strings.Contains(err.Error(), "HTTP 200") {
					t.Errorf("%s: err = %q, does not mention the status", method, err)
				}
				if _, ok := errors.AsType[*client.Error](err); ok {
					t.Errorf("%s: a malformed success is a *client.Error: %v", method, err)
				}
				if tc.body != "" && !strings.Contains(err.Error(), strings.TrimSpace(tc.body)[:min(len(tc.body), 10)]) {
					t.Errorf("%s: err = %q, does not quote the answer", method, err)
				}
			}
		})
	}
}

// Known client bug: a 2xx answer whose JSON is null, or an object with none of
// the expected fields (such as a problem sent with status 200), decodes into
// a zero value with a nil error, because encoding/json accepts both.
func TestMalformedSuccessAnswersWithoutExpectedFields(t *testing.T) {
	for _, body := range []string{`null`, `{"unexpected":true}`, `{"type":"about:blank","status":500,"code":"internal"}`} {
		c := client.New(fixedServer(t, 200, "application/json", body))
		for method, err := range calls(t.Context(), c) {
			if err == nil {
				t.Errorf("%s: nil error for a 200 answer %s", method, body)
			}
		}
	}
}

// A non-2xx answer is always a *client.Error: the server's problem when it
// sent one with a code, else a stand-in whose code and message carry the
// status and a bounded quote of the body.
func TestMalformedErrorAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code                    string // the problem code the client should report
		quote                   string // what the message should quote of the body
	}{
		{"HTML 502", "text/html", "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>", 502, "http_502", "502 Bad Gateway"},
		{"plain text 503", "text/plain", "upstream connect error\n", 503, "http_503", "upstream connect error"},
		{"empty 500", "", "", 500, "http_500", "(empty body)"},
		{"empty 404", "application/problem+json", "", 404, "http_404", "(empty body)"},
		{"truncated problem", "application/problem+json", `{"code":"conflict","detail":"ten`, 409, "http_409", `{"code":"conflict"`},
		{"problem without code", "application/problem+json", `{"type":"about:blank","title":"Conflict","status":409,"detail":"no code here"}`, 409, "http_409", "no code here"},
		{"problem with an empty code", "application/problem+json", `{"code":"","detail":"x"}`, 400, "http_400", `{"code":""`},
		{"problem with fields of the wrong type", "application/problem+json", `{"code":"conflict","status":"four-oh-nine"}`, 409, "http_409", "four-oh-nine"},
		{"problem with violations of the wrong shape", "application/problem+json", `{"code":"quota_exceeded","violations":"many"}`, 409, "http_409", "many"},
		{"JSON array", "application/json", `[]`, 500, "http_500", "[]"},
		{"JSON null", "application/json", `null`, 500, "http_500", "null"},
		{"teapot", "", "I'm a teapot", 418, "http_418", "I'm a teapot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client.New(fixedServer(t, tc.status, tc.contentType, tc.body))
			errs := calls(t.Context(), c)
			maps.Copy(errs, noBodyCalls(t.Context(), c))
			for method, err := range errs {
				ce, ok := errors.AsType[*client.Error](err)
				if !ok {
					t.Errorf("%s: err = %v, want a *client.Error", method, err)
					continue
				}
				if ce.Status != tc.status || ce.Problem.Status != tc.status || ce.Problem.Code != tc.code || !client.IsCode(err, tc.code) {
					t.Errorf("%s: err = HTTP %d %+v, want HTTP %d code %s", method, ce.Status, ce.Problem, tc.status, tc.code)
				}
				msg := err.Error()
				if !strings.Contains(msg, fmt.Sprintf("HTTP %d", tc.status)) || !strings.Contains(msg, tc.quote) {
					t.Errorf("%s: message %q does not name HTTP %d and quote %q", method, msg, tc.status, tc.quote)
				}
			}
		})
	}
}

// A problem that has a code but lacks other fields keeps its code; the status
// comes from the HTTP answer.
func TestSparseProblems(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
		wantInMsg  []string
	}{
		{"code only", `{"code":"conflict"}`, 409, "conflict", []string{"conflict", "HTTP 409"}},
		// With a detail, the message is "code: detail"; the status is only in
		// the Status field.
		{"code and detail", `{"code":"unavailable","detail":"try again"}`, 503, "unavailable", []string{"unavailable", "try again"}},
		{"status disagrees", `{"code":"not_found","status":200}`, 404, "not_found", []string{"not_found", "HTTP 404"}},
		{"unknown fields", `{"code":"overloaded","retry":"soon","extra":[1,2]}`, 503, "overloaded", []string{"overloaded", "HTTP 503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client.New(fixedServer(t, tc.status, "application/problem+json", tc.body))
			_, err := c.Tenant(t.Context(), "a")
			ce, ok := errors.AsType[*client.Error](err)
			if !ok {
				t.Fatalf("err = %v, want a *client.Error", err)
			}
			if ce.Status != tc.status || ce.Problem.Code != tc.code || !client.IsCode(err, tc.code) {
				t.Errorf("err = HTTP %d %+v, want HTTP %d code %s", ce.Status, ce.Problem, tc.status, tc.code)
			}
			for _, want := range tc.wantInMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Error() = %q, does not contain %q", err, want)
				}
			}
		})
	}
}

// The connection dies mid-answer, or before any answer.
func TestBrokenAnswers(t *testing.T) {
	t.Run("body shorter than Content-Length", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			io.WriteString(w, `{"tenants":[`)
		}))
		t.Cleanup(srv.Close)
		_, err := client.New(srv.URL).Tenants(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 200") {
			t.Fatalf("err = %v, want an error naming HTTP 200", err)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("connection closed without an answer", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		_, err := client.New(srv.URL).Tenants(t.Context())
		if err == nil || !strings.Contains(err.Error(), srv.URL) {
			t.Fatalf("err = %v, want an error naming %s", err, srv.URL)
		}
	})
	t.Run("not HTTP", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err == nil {
				buf.WriteString("SSH-2.0-OpenSSH_9.6\r\n\r\n")
				buf.Flush()
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		_, err := client.New(srv.URL).Tenants(t.Context())
		if err == nil || !strings.Contains(err.Error(), srv.URL) {
			t.Fatalf("err = %v, want an error naming %s", err, srv.URL)
		}
	})
}

// streamServer answers status and then n bytes of body made of head, filler
// repeated, and tail.
func streamServer(t *testing.T, status int, head, filler, tail string, n int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if _, err := io.WriteString(w, head); err != nil {
			return
		}
		chunk := strings.Repeat(filler, (64<<10)/len(filler))
		for written := len(head); written < n; written += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return // the client stopped reading
			}
		}
		io.WriteString(w, tail)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestHugeAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 64 MiB answers")
	}
	const huge = 80 << 20 // over the client's 64 MiB cap
	t.Run("success over the cap", func(t *testing.T) {
		url := streamServer(t, 200, `{"tenants":[`, `{"id":"tenant-0000000000"},`, `{"id":"z"}]}`, huge)
		_, err := client.New(url).Tenants(t.Context())
		if err == nil {
			t.Fatal("an answer over the cap decoded without error")
		}
		if msg := err.Error(); !strings.Contains(msg, "HTTP 200") || len(msg) > 1000 {
			t.Fatalf("err = %.300q (%d bytes), want a short message naming HTTP 200", msg, len(msg))
		}
	})
	t.Run("error over the cap", func(t *testing.T) {
		url := streamServer(t, 502, "<html>", "x", "</html>", huge)
		_, err := client.New(url).Tenants(t.Context())
		ce, ok := errors.AsType[*client.Error](err)
		if !ok {
			t.Fatalf("err = %v, want a *client.Error", err)
		}
		if ce.Status != 502 || ce.Problem.Code != "http_502" {
			t.Fatalf("err = HTTP %d %+v", ce.Status, ce.Problem)
		}
		if msg := err.Error(); !strings.Contains(msg, "HTTP 502") || !strings.Contains(msg, "<html>") || len(msg) > 1000 {
			t.Fatalf("err = %.300q (%d bytes), want a short message naming HTTP 502", msg, len(msg))
		}
	})
	t.Run("large success under the cap", func(t *testing.T) {
		const n = 20000
		var b strings.Builder
		b.WriteString(`{"tenants":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"t%05d","name":"%s"}`, i, strings.Repeat("n", 100))
		}
		b.WriteString(`]}`)
		list, err := client.New(fixedServer(t, 200, "application/json", b.String())).Tenants(t.Context())
		noErr(t, "Tenants", err)
		if len(list) != n || list[n-1].ID != fmt.Sprintf("t%05d", n-1) {
			t.Fatalf("decoded %d tenants, want %d", len(list), n)
		}
	})
}

// Known client bug: snippet cuts the quoted body at byte 200, which can split
// a multi-byte UTF-8 character and put invalid UTF-8 in the error message.
func TestErrorQuoteIsValidUTF8(t *testing.T) {
	c := client.New(fixedServer(t, 500, "text/plain; charset=utf-8", strings.Repeat("€", 100)))
	_, err := c.Tenants(t.Context())
	if err == nil || !utf8.ValidString(err.Error()) {
		t.Fatalf("err = %q, want valid UTF-8", err)
	}
}
