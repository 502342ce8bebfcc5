package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/cli"
)

func TestLifecycleCommands(t *testing.T) {
	srv := setUp(t)
	ok := func(args ...string) string {
		t.Helper()
		r := allot(t, srv, "", args...)
		if r.code != 0 {
			t.Fatalf("allot %v: exit %d: %s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	// compute is auto: applied at once; DCS waits for an admin.
	if out := ok("requests", "create", "acme", "compute.instances", "5", "--reason", "launch"); !strings.Contains(out, "approved") {
		t.Fatalf("auto request:\n%s", out)
	}
	out := ok("requests", "create", "acme", "dcs.instances", "3", "-o", "json")
	id := between(out, `"id": "`, `"`)
	if id == "" || !strings.Contains(out, `"status": "pending"`) {
		t.Fatalf("review request:\n%s", out)
	}
	if out := ok("requests", "list", "--status", "pending"); !strings.Contains(out, id) {
		t.Fatalf("pending list:\n%s", out)
	}
	if out := ok("requests", "approve", "acme", id, "--comment", "go ahead"); !strings.Contains(out, "approved") {
		t.Fatalf("approve:\n%s", out)
	}
	if r := allot(t, srv, "", "requests", "deny", "acme", id); r.code != 1 || !strings.Contains(r.stderr, "conflict: ") {
		t.Fatalf("deny after approval: %d %s", r.code, r.stderr)
	}
	if r := allot(t, srv, "", "requests", "create", "acme", "compute.instances", "1000"); r.code != 1 || !strings.Contains(r.stderr, "outside_requestable_range") {
		t.Fatalf("outside the range: %d %s", r.code, r.stderr)
	}
	if r := allot(t, srv, "", "requests", "create", "acme", "compute.instances", "many"); r.code != 2 {
		t.Fatalf("non-integer value: %d %s", r.code, r.stderr)
	}

	if out := ok("tenants", "update", "globex", "--plan", "pro", "--name", "Globex Inc"); !strings.Contains(out, "Globex Inc") || !strings.Contains(out, "pro") {
		t.Fatalf("tenants update:\n%s", out)
	}
	if r := allot(t, srv, "", "tenants", "update", "globex"); r.code != 2 {
		t.Fatalf("tenants update with nothing to change: exit %d", r.code)
	}

	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	os.WriteFile(inv, []byte("kinds: [compute.instance]\nconsumers:\n  - {consumer: web-1, kind: compute.instance, state: running, attributes: {memory_mb: 256}}\n  - {consumer: web-9, kind: compute.instance, state: stopped, attributes: {memory_mb: 64}}\n"), 0o600)
	if out := ok("reconcile", "acme", "-f", inv, "--dry-run"); !strings.Contains(out, "would be reconciled (dry run): 1 created, 0 updated, 1 deleted") ||
		!strings.Contains(out, "+ web-9") || !strings.Contains(out, "- web-2") {
		t.Fatalf("dry run:\n%s", out)
	}
	if out := ok("reconcile", "acme", "-f", inv); !strings.Contains(out, "acme reconciled: 1 created, 0 updated, 1 deleted") {
		t.Fatalf("reconcile:\n%s", out)
	}
	if out := ok("overquota"); !strings.Contains(out, "globex  compute.volumes  1     0     1") {
		t.Fatalf("overquota:\n%s", out)
	}
	if out := ok("thresholds", "set", "acme", "50%", "90"); strings.TrimSpace(out) != "50% 90%" {
		t.Fatalf("thresholds: %q", out)
	}
	out = ok("webhooks", "create", "https://hooks.example.com/x", "--secret", "0123456789abcdef", "--events", "consumer.put,quota.threshold", "-o", "json")
	hook := between(out, `"id": "`, `"`)
	if out := ok("webhooks", "list"); !strings.Contains(out, hook) || !strings.Contains(out, "consumer.put,quota.threshold") {
		t.Fatalf("webhooks list:\n%s", out)
	}
	ok("webhooks", "delete", hook)

	// events --follow prints what happened, then what happens next.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"ALLOT_SERVER": srv.URL, "ALLOT_TOKEN": srv.AdminToken}
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, []string{"events", "--follow", "--tenant", "acme", "-o", "json"}, func(k string) string { return env[k] }, nil, &stdout, &stderr)
	}()
	time.Sleep(300 * time.Millisecond)
	ok("consumers", "put", "acme", "late", "--kind", "compute.volume", "--attr", "size_mb=2")
	if code := <-done; code != 0 {
		t.Fatalf("events --follow: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"tenant.create"`) || !strings.Contains(stdout.String(), `"subject":"late"`) {
		t.Fatalf("events --follow printed:\n%s", stdout.String())
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
