package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/client"
)

// chrome is one headless Chromium tab on the dashboard, for the browser
// tests.
type chrome struct {
	t   *testing.T
	ctx context.Context
	e   *env
	dir string
}

func newChrome(t *testing.T, e *env) *chrome {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must run the browser test", chromium)
		}
		t.Skipf("%s is missing (apt-get install chromium); skipping the browser test", chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, stop := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	t.Cleanup(stop)
	tab, closeTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(closeTab)
	return &chrome{t: t, ctx: tab, e: e, dir: t.ArtifactDir()}
}

func (c *chrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, steps...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

func (c *chrome) width(px int64) { c.t.Helper(); c.do("viewport", chromedp.EmulateViewport(px, 900)) }

func evalJS[T any](c *chrome, js string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// shoot saves the whole page as name-390.png and name-1280.png, ending at
// the desktop width; at 390 px the page must not scroll sideways.
func (c *chrome) shoot(name string) {
	c.t.Helper()
	for _, width := range []int64{390, 1280} {
		c.width(width)
		if width == 390 {
			if w := evalJS[int](c, `document.documentElement.scrollWidth`); w > 390 {
				c.t.Errorf("%s at 390 px is %d px wide: it scrolls sideways", name, w)
			}
		}
		png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			c.t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(c.dir, fmt.Sprintf("%s-%d.png", name, width))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			c.t.Fatal(err)
		}
		c.t.Logf("screenshot: %s", path)
	}
}

func (c *chrome) signIn(token, landing string) {
	c.t.Helper()
	c.do("sign in",
		chromedp.Navigate(c.e.ui.URL+"/ui/signin"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS(`form[action="/ui/signin"] button`)),
		chromedp.WaitVisible(chromedp.CSS(landing)))
}

func (c *chrome) open(path, ready string) {
	c.t.Helper()
	c.do("open "+path, chromedp.Navigate(c.e.ui.URL+path), chromedp.WaitVisible(chromedp.CSS(ready)))
}

// Long ids, as the README recommends them: a DCS project and a KraftCloud
// user.
const (
	project = "0123456789abcdef0123456789abcdef"
	user    = "471a2a73-36db-4df9-bb63-82a45810e88a"
)

// scale adds what a real cloud has to the browser tests' world: tenants
// with long ids and many consumers (so events fill several pages), a
// tenant on a plan, enough tenants that the near-limit list pages at every
// level, and a webhook whose receiver fails.
func scale(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	hard := func(n int64) *int64 { return &n }
	must(e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: project, Name: "Cache project"}))
	must(e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: user, Name: "A KraftCloud user", Plan: "free"}))
	must(e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "hooli", Name: "Hooli", Plan: "free"}))
	must(e.admin.SetQuota(ctx, project, "compute.instances", client.SetQuotaRequest{Hard: hard(40)}))
	for i := range 35 {
		must(e.admin.PutConsumer(ctx, project, fmt.Sprintf("9f0c%04d-5b1e-4c2a-8d3f-%012d", i, i), client.PutConsumerRequest{
			Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 64}}, client.PutOptions{}))
	}
	for i := range 2 {
		must(e.admin.PutConsumer(ctx, user, fmt.Sprintf("vol-%d", i), client.PutConsumerRequest{Kind: "compute.volume",
			Attributes: map[string]int64{"size_mb": 100}}, client.PutOptions{}))
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	must(e.admin.CreateWebhook(ctx, client.CreateWebhookRequest{URL: failing.URL + "/allot", Secret: "a-secret-of-16-bytes",
		Events: []string{"consumer.put"}, Tenant: user}))
	must(e.admin.PutConsumer(ctx, user, "vol-1", client.PutConsumerRequest{Kind: "compute.volume",
		Attributes: map[string]int64{"size_mb": 50}}, client.PutOptions{}))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if hs, err := e.admin.Webhooks(ctx); err == nil && len(hs) == 1 && hs[0].Failing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook never failed")
		}
	}
	return failing
}

// TestBrowserAtScale drives the dashboard with long tenant ids and many
// events: the events page pages, stays readable at 1280 and 390 px (ids cut
// short with their whole value on hover and a copy button, a change column
// that keeps its width) and keeps its live updates; the near-limit page
// sorts, filters and pages; the tenant page says where each quota comes
// from and its charts have an axis with numbers and values on hover; an
// admin sees the failing webhook. Screenshots at both widths go to the
// test's artifact directory.
func TestBrowserAtScale(t *testing.T) {
	e := setup(t)
	c := newChrome(t, e)
	receiver := scale(t, e)
	ctx := c.ctx

	// An admin lands on the overview, which says a webhook is failing.
	c.signIn(e.tokens["admin"], "table.tenants")
	alert := evalJS[string](c, `document.querySelector(".alert") ? document.querySelector(".alert").textContent : ""`)
	if !strings.Contains(alert, "1 webhook is failing") || !strings.Contains(alert, receiver.URL+"/allot") || !strings.Contains(alert, "503") {
		t.Errorf("the overview's alert reads %q", alert)
	}
	c.shoot("admin-overview-failing-webhook")
	c.open("/ui/webhooks", "#webhooks")
	if row := evalJS[string](c, `document.querySelector("#webhooks tbody tr").textContent`); !strings.Contains(row, "failing") ||
		!strings.Contains(row, "503 Service Unavailable") || !strings.Contains(row, user) {
		t.Errorf("the webhooks page reads %q", row)
	}
	c.shoot("admin-webhooks")

	// The events page: one page of 50, newest first, the change column
	// wide enough to read, each long id within its cell, in its title
	// and its copy button.
	c.open("/ui/events", "#events")
	c.do("live", chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent.startsWith("Live:")`))
	if n := evalJS[int](c, `document.querySelectorAll("#events tbody tr").length`); n != 50 {
		t.Errorf("the events page shows %d events, want a page of 50", n)
	}
	if w := evalJS[float64](c, `document.querySelector("#events thead th:nth-child(7)").getBoundingClientRect().width`); w < 250 {
		t.Errorf("the change column is %.0f px wide at 1280 px, want at least 250", w)
	}
	if h := evalJS[int](c, `document.documentElement.scrollHeight`); h > 6000 {
		t.Errorf("a page of 50 events is %d px long", h)
	}
	cut := evalJS[map[string]any](c, fmt.Sprintf(`(() => {
		const a = [...document.querySelectorAll("#events td[data-label=Tenant] .id-text")].find(a => a.title === %q);
		const td = a.closest("td"), copy = a.parentElement.querySelector("button.copy");
		return {text: a.textContent, cut: a.scrollWidth > a.clientWidth, inside: a.getBoundingClientRect().right <= td.getBoundingClientRect().right + 1,
			copy: copy.dataset.copy, visible: copy.getBoundingClientRect().right <= td.getBoundingClientRect().right + 1};
	})()`, project))
	if cut["text"] != project || cut["copy"] != project || cut["inside"] != true || cut["visible"] != true {
		t.Errorf("the 32-hex tenant id at 1280 px: %v", cut)
	}
	c.do("copy", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#events td[data-label=Tenant] button.copy[data-copy=%q]`, project))),
		chromedp.Poll[chromedp.Void](`document.querySelector("#events button.copy[data-state]") !== null`))
	c.shoot("admin-events-long-ids")

	// At 390 px each event is a card and the ids are whole.
	c.width(390)
	whole := evalJS[bool](c, fmt.Sprintf(`(() => {
		const a = [...document.querySelectorAll("#events td[data-label=Tenant] .id-text")].find(a => a.title === %q);
		return a.scrollWidth <= a.clientWidth && a.getBoundingClientRect().right <= document.documentElement.clientWidth;
	})()`, project))
	if !whole {
		t.Error("at 390 px the 32-hex tenant id is cut short or runs off the screen")
	}
	c.width(1280)

	// Live: a new event comes in at the top, the page keeps its 50, and
	// the link to older events moves down with the oldest row.
	first := evalJS[int](c, `+document.querySelector("#events tbody tr:last-child td").textContent`)
	if _, err := e.admin.PutConsumer(ctx, project, "live-one-0123456789abcdef", client.PutConsumerRequest{Kind: "compute.instance",
		State: "stopped", Attributes: map[string]int64{"memory_mb": 64}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	c.do("live event", chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll("#events tbody tr.fresh")].some(r => r.textContent.includes("live-one-0123456789abcdef"))`))
	if n := evalJS[int](c, `document.querySelectorAll("#events tbody tr").length`); n != 50 {
		t.Errorf("after a live event the page shows %d events, want 50", n)
	}
	if got := evalJS[string](c, `document.querySelector("#events tbody tr.fresh td[data-label=Tenant] button.copy").dataset.copy`); got != project {
		t.Errorf("the live row's copy button copies %q", got)
	}
	oldest := evalJS[int](c, `+document.querySelector("#events tbody tr:last-child td").textContent`)
	if oldest != first+1 || !strings.HasSuffix(evalJS[string](c, `document.getElementById("older").href`), "before="+strconv.Itoa(oldest)) {
		t.Errorf("the oldest row was %d and is %d; the older link is %s", first, oldest, evalJS[string](c, `document.getElementById("older").href`))
	}

	// Older events: the page just below, with no gap and no repeat.
	c.do("older", chromedp.Click(chromedp.CSS("#older")), chromedp.WaitVisible(chromedp.CSS(`#events tbody tr`)))
	top := evalJS[int](c, `+document.querySelector("#events tbody tr:first-child td").textContent`)
	if top != oldest-1 {
		t.Errorf("the older page starts at %d, want %d", top, oldest-1)
	}
	if live := evalJS[bool](c, `document.getElementById("live") !== null || document.getElementById("events").dataset.stream !== undefined`); live {
		t.Error("an older page follows the stream")
	}
	c.shoot("admin-events-older")
	c.do("newer", chromedp.Click(chromedp.CSS(`.pager a[rel=prev]`)), chromedp.WaitVisible(chromedp.CSS(`#events tbody tr`)))
	if got := evalJS[int](c, `+document.querySelector("#events tbody tr:last-child td").textContent`); got != oldest {
		t.Errorf("newer again ends at %d, want %d", got, oldest)
	}

	// Near their limit: by default each tenant's first threshold; the
	// project at 35 of 40 instances (87 %) is there, the sorts and filters
	// work, and at every level the list pages.
	c.open("/ui/quotas", "#near")
	rows := func() []string {
		return evalJS[[]string](c, `[...document.querySelectorAll("#near tbody tr")].map(r =>
			r.querySelector(".id-text").title + " " + r.querySelector(".bar-name").textContent + " " +
			r.querySelector("td[data-label=Utilisation]").textContent.trim().split(" ")[0] + " " +
			r.querySelector("td[data-label=Headroom]").textContent.trim())`)
	}
	got := rows()
	if len(got) == 0 || !strings.HasPrefix(got[0], "initech compute.volumes") || !contains(got, project+" compute.instances 90 4") {
		t.Errorf("near their limit, by utilisation: %v", got)
	}
	c.shoot("admin-near-limit")
	c.do("sort by headroom", chromedp.Click(chromedp.CSS(`#near thead a[data-sort=headroom]`)),
		chromedp.WaitVisible(chromedp.CSS(`#near th[aria-sort=ascending]`)))
	headroom := rows()
	for i := 1; i < len(headroom); i++ {
		a, _ := strconv.Atoi(strings.ReplaceAll(headroom[i-1][strings.LastIndex(headroom[i-1], " ")+1:], ",", ""))
		b, _ := strconv.Atoi(strings.ReplaceAll(headroom[i][strings.LastIndex(headroom[i], " ")+1:], ",", ""))
		if a > b {
			t.Errorf("by headroom, %q comes before %q", headroom[i-1], headroom[i])
		}
	}
	c.open("/ui/quotas?service=dcs&min=0", "#near")
	for _, r := range rows() {
		if !strings.Contains(r, " dcs.") {
			t.Errorf("filtered to dcs, the list has %q", r)
		}
	}
	c.open("/ui/quotas?min=0&plan=free", "#near")
	for _, r := range rows() {
		if !strings.HasPrefix(r, user) && !strings.HasPrefix(r, "hooli") {
			t.Errorf("filtered to the free plan, the list has %q", r)
		}
	}
	c.open("/ui/quotas?min=0", "#near")
	if n := len(rows()); n != 50 || !strings.HasPrefix(evalJS[string](c, `document.getElementById("near-count").textContent`), "Rows 1–50 of 60") {
		t.Errorf("every level: %d rows, %q", n, evalJS[string](c, `document.getElementById("near-count").textContent`))
	}
	c.do("next page", chromedp.Click(chromedp.CSS(`.pager a[rel=next]`)), chromedp.WaitVisible(chromedp.CSS(`#near tbody tr`)))
	if n := len(rows()); n != 10 {
		t.Errorf("the second page has %d rows, want 10", n)
	}
	c.shoot("admin-near-limit-page-2")

	// The tenant page: where each quota comes from, and charts with an
	// axis and values.
	c.open("/ui/tenants/"+user, "#quotas-h")
	sources := evalJS[map[string]string](c, `Object.fromEntries([...document.querySelectorAll(".bars li")].map(li =>
		[li.querySelector(".bar-name").textContent, li.querySelector(".source").textContent]))`)
	if sources["compute.volumes"] != "from plan free" || sources["compute.services"] != "catalog default" {
		t.Errorf("the sources of %s's quotas: %v", user, sources)
	}
	c.open("/ui/tenants/acme", "#quotas-h")
	sources = evalJS[map[string]string](c, `Object.fromEntries([...document.querySelectorAll(".bars li")].map(li =>
		[li.querySelector(".bar-name").textContent, li.querySelector(".source").textContent]))`)
	if sources["compute.instances"] != "set for this tenant" || sources["compute.volumes"] != "catalog default" {
		t.Errorf("the sources of acme's quotas: %v", sources)
	}
	chart := evalJS[map[string]any](c, `(() => {
		const f = [...document.querySelectorAll(".chart")].find(f => f.querySelector(".bar-name").textContent === "compute.instances");
		const bands = f.querySelectorAll("rect.hit");
		return {axis: [...f.querySelectorAll(".y-axis span")].map(s => s.textContent).join(" "),
			bands: bands.length, last: bands[bands.length - 1].querySelector("title").textContent,
			values: f.querySelectorAll(".values tbody tr").length};
	})()`)
	if chart["axis"] != "10 5 0" || chart["bands"] != float64(24) || !strings.Contains(chart["last"].(string), "used 4 of 5") || chart["values"] != float64(24) {
		t.Errorf("acme's compute.instances chart: %v", chart)
	}
	c.shoot("admin-tenant-sources-and-charts")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
