package ui_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/allot-dev/allot/client"
)

var eventSeq = regexp.MustCompile(`<td class="num" data-label="#">(\d+)</td>`)

// seqs are the sequence numbers of the events a page shows, in order.
func seqs(body string) []int {
	var out []int
	for _, m := range eventSeq.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// The events page shows 50 at a time, newest first; older and newer pages
// follow on from it without a gap or a repeat, and keep the filters; only
// the newest page follows the stream.
func TestEventsPages(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for i := range 60 {
		if _, err := e.admin.PutConsumer(ctx, "globex", "v", client.PutConsumerRequest{Kind: "compute.volume",
			Attributes: map[string]int64{"size_mb": int64(2 + i)}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := e.admin.Events(ctx, client.EventQuery{Tenant: "globex", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []int // globex's consumer.put events, newest first
	for i := len(all.Events) - 1; i >= 0; i-- {
		if all.Events[i].Type == "consumer.put" {
			want = append(want, int(all.Events[i].Seq))
		}
	}
	b := e.signIn("admin")
	res, body := b.get("/ui/events?tenant=globex&type=consumer.put")
	wantStatus(t, "the newest page", res, 200)
	first := seqs(body)
	if len(first) != 50 || first[0] != want[0] || first[49] != want[49] {
		t.Fatalf("the newest page shows %v, want the 50 of %v", first, want)
	}
	older := "/ui/events?before=" + strconv.Itoa(want[49]) + "&amp;tenant=globex&amp;type=consumer.put"
	wantContains(t, "the newest page", body, `data-stream="/ui/events/stream?tenant=globex&amp;type=consumer.put&amp;after=`,
		`data-page="50"`, `id="older" rel="next" href="`+older+`"`)

	res, body = b.get("/ui/events?before=" + strconv.Itoa(want[49]) + "&tenant=globex&type=consumer.put")
	wantStatus(t, "the older page", res, 200)
	if got := seqs(body); len(got) != 10 || got[0] != want[50] || got[9] != want[59] {
		t.Errorf("the older page shows %v, want %v", got, want[50:])
	}
	newer := "/ui/events?after=" + strconv.Itoa(want[49]-1) + "&amp;tenant=globex&amp;type=consumer.put"
	wantContains(t, "the older page", body, `rel="prev" href="`+newer+`"`, "The newest events")
	if regexp.MustCompile(`data-stream=`).MatchString(body) {
		t.Error("an older page follows the stream")
	}
	wantContains(t, "the oldest page", body, `href="" data-base="/ui/events?tenant=globex&amp;type=consumer.put&amp;before=" hidden>Older events`)

	_, body = b.get("/ui/events?after=" + strconv.Itoa(want[49]-1) + "&tenant=globex&type=consumer.put")
	if got := seqs(body); len(got) != 50 || got[0] != want[0] || got[49] != want[49] {
		t.Errorf("newer again shows %v, want the newest 50", got)
	}

	for _, q := range []string{"before=0", "before=x", "after=-3", "before=5&after=3"} {
		res, _ := b.get("/ui/events?" + q)
		wantStatus(t, "events?"+q, res, http.StatusBadRequest)
	}
}

// The near-limit page and the webhooks page are for operators and admins.
func TestOperatorPagesAccess(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		who, path string
		status    int
	}{
		{"admin", "/ui/quotas", 200}, {"service", "/ui/quotas", 200}, {"acme", "/ui/quotas", 403},
		{"admin", "/ui/webhooks", 200}, {"service", "/ui/webhooks", 403}, {"acme", "/ui/webhooks", 403},
		{"admin", "/ui/quotas?min=lots", 400}, {"admin", "/ui/quotas?service=nope", 400}, {"admin", "/ui/quotas?sort=name", 400},
	} {
		res, _ := e.signIn(tc.who).get(tc.path)
		wantStatus(t, tc.who+" GET "+tc.path, res, tc.status)
	}
	_, body := e.signIn("service").get("/ui/tenants")
	if regexp.MustCompile(`href="/ui/webhooks"`).MatchString(body) {
		t.Error("a service token is offered the webhooks page")
	}
	_, body = e.signIn("service").get("/ui/quotas")
	wantContains(t, "near their limit as service", body, `<a class="id-text" href="/ui/tenants/acme" title="acme">acme</a>`, "80 %", "set for this tenant")
}

// The tenant page shows the tenant's subtree: an operator sees an
// organisation's projects and how its allowance is split.
func TestTenantPageShowsTheTree(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "org"}); err != nil {
		t.Fatal(err)
	}
	mem := int64(1024)
	if _, err := e.admin.SetQuota(ctx, "org", "compute.live_memory_mb", client.SetQuotaRequest{Hard: &mem}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateTenant(ctx, "globex", client.UpdateTenantRequest{Parent: client.MoveTo("org")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.PutConsumer(ctx, "globex", "vm", client.PutConsumerRequest{Kind: "compute.instance", State: "running",
		Attributes: map[string]int64{"memory_mb": 256}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	res, body := e.signIn("admin").get("/ui/tenants/org")
	wantStatus(t, "the org's page", res, 200)
	wantContains(t, "the org's page", body, `<h2 id="tree-h">Tree</h2>`, `<td class="depth-1"><a href="/ui/tenants/globex">globex</a></td>`,
		`<td>compute.live_memory_mb</td><td>0</td><td>256</td><td>1,024</td>`)
	_, body = e.signIn("admin").get("/ui/tenants/globex")
	wantContains(t, "globex's page", body, `under <a href="/ui/tenants/org">org</a>`)
}
