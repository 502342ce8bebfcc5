package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/client"
)

const chromium = "/usr/bin/chromium"

// TestBrowser drives the dashboard in headless Chromium: an admin sees a
// tenant past its warning threshold, approves a pending request and sees
// the new hard quota, watches an event arrive live; the tenant then asks
// for an increase and sees it pending. Screenshots at 1280 and 390 px go to
// the test's artifact directory (go test -artifacts keeps them).
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; CI must run the browser test", chromium)
		}
		t.Skipf("%s is missing (apt-get install chromium); skipping the browser test", chromium)
	}
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	alloc, stop := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	t.Cleanup(stop) // before the UI server closes (cleanups run last first), so no stream holds it open
	ctx, closeTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(closeTab)
	dir := t.ArtifactDir()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// shoot saves the whole page as name-1280.png and name-390.png.
	shoot := func(name string) {
		t.Helper()
		for _, width := range []int64{390, 1280} { // ends at the desktop width
			do("viewport", chromedp.EmulateViewport(width, 900))
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", path)
		}
	}
	// Every page is self-contained: nothing is fetched from another origin.
	local := func(page string) {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			`performance.getEntriesByType("resource").every(r => r.name.startsWith(location.origin + "/"))`))
		if err != nil || !ok {
			t.Errorf("%s fetched something from another origin (%v)", page, err)
		}
	}
	signIn := func(token, landing string) {
		t.Helper()
		do("sign in",
			chromedp.Navigate(e.ui.URL+"/ui/signin"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS(`form[action="/ui/signin"] button`)),
			chromedp.WaitVisible(chromedp.CSS(landing)))
	}

	// An admin: acme uses 4 of 5 compute.instances (80 %) and is highlighted.
	do("sign-in page", chromedp.Navigate(e.ui.URL+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shoot("signin")
	signIn(e.tokens["admin"], "table.tenants")
	do("acme highlighted", chromedp.WaitVisible(chromedp.CSS(`tr.row-warn a[href="/ui/tenants/acme"]`)))
	if s := text(`tr.row-warn`); !strings.Contains(s, "near quota") || !strings.Contains(s, "4 / 5") {
		t.Errorf("acme's row says %q; want near quota, 4 / 5", s)
	}
	local("the tenants page")
	shoot("admin-tenants")

	// It approves acme's pending request for 6 dcs.instances.
	row := "#req-" + e.req.ID
	do("requests page", chromedp.Navigate(e.ui.URL+"/ui/requests"), chromedp.WaitVisible(chromedp.CSS(row+` button[value="approve"]`)))
	shoot("admin-requests")
	do("approve",
		chromedp.SendKeys(chromedp.CSS(row+` input[name="comment"]`), "enjoy"),
		chromedp.Click(chromedp.CSS(row+` button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if s := text(".flash.ok"); s != "Approved dcs.instances of acme = 6." {
		t.Errorf("after approving: %q", s)
	}
	do("acme's page", chromedp.Navigate(e.ui.URL+"/ui/tenants/acme"), chromedp.WaitVisible(chromedp.CSS("#quotas-h")))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll(".bars li")]
		.find(li => li.querySelector(".bar-name").textContent === "dcs.instances").querySelector(".bar-nums").textContent`))
	if err != nil || !strings.HasPrefix(got, "0 / 6") {
		t.Errorf("dcs.instances after approval: %q (%v), want 0 / 6", got, err)
	}
	local("the tenant page")
	shoot("admin-tenant")

	// The events page follows the stream: a new tenant shows up live.
	do("events page",
		chromedp.Navigate(e.ui.URL+"/ui/events"),
		chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent.startsWith("Live:")`))
	if _, err := e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "hooli", Name: "Hooli"}); err != nil {
		t.Fatal(err)
	}
	do("live event", chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll("#events tbody tr.fresh")].some(r => r.textContent.includes("tenant.create") && r.textContent.includes("hooli"))`))
	local("the events page")
	shoot("admin-events")
	do("sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))

	// The tenant asks for more DCS memory (policy review) and sees it pending.
	signIn(e.tokens["acme"], "#quotas-h")
	do("request",
		chromedp.SetValue(chromedp.CSS("#ask-resource"), "dcs.ram_mb"),
		chromedp.SendKeys(chromedp.CSS("#ask-value"), "4096"),
		chromedp.SendKeys(chromedp.CSS("#ask-reason"), "bigger cache"),
		chromedp.Click(chromedp.CSS(`form[action="/ui/tenants/acme/requests"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if s := text(".flash.ok"); s != "Asked for dcs.ram_mb = 4,096; the request is pending." {
		t.Errorf("after asking: %q", s)
	}
	if s := text(".request"); !strings.Contains(s, "dcs.ram_mb → 4,096") || !strings.Contains(s, "pending") {
		t.Errorf("the open request reads %q", s)
	}
	shoot("tenant")
	do("phone", chromedp.EmulateViewport(390, 900))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 390 {
		t.Errorf("at 390 px the page is %d px wide (%v): it scrolls sideways", w, err)
	}
}
