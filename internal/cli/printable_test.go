package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/cli"
	"github.com/allot-dev/allot/internal/quota"
)

// evil is text a tenant may write: OSC 52 (write the operator's
// clipboard), CSI 2J (clear the screen), a C1 CSI, DEL, bidi overrides
// and isolates, and a line separator.
const evil = "please \x1b]52;c;cm0gLXJmIH4=\x07 then\x1b[2J \u202eevil\u2066 c1\u009b31m del\x7f ls\u2028 end"

// rawUnsafe returns the first rune of out that must not reach a terminal
// raw, or "" if there is none; newlines are the CLI's own.
func rawUnsafe(out string) string {
	for i, r := range out {
		switch {
		case r == '\n':
		case r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD"):
			return fmt.Sprintf("invalid UTF-8 at %d", i)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0x061c || r == 0x200e || r == 0x200f ||
			r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x2028 || r == 0x2029:
			return fmt.Sprintf("%U at %d", r, i)
		}
	}
	return ""
}

// The scenario of the report: a tenant's request reason, printed by
// `allot requests list`, must not drive the operator's terminal; JSON and
// YAML escape it too and still decode to the very text.
func TestRequestsListEscapesTerminalControls(t *testing.T) {
	srv := setUp(t)
	// The server refuses such text now; a database written by an older
	// version may still hold it, so it goes in behind the API's back.
	if r := allot(t, srv, "", "requests", "create", "acme", "dcs.instances", "3", "--reason", evil); r.code == 0 {
		t.Fatal("the server accepted a reason with control characters")
	}
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	ctx := context.Background()
	tx, err := srv.Store.Begin(ctx, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	tx.Apply(&quota.Writes{PutRequests: []*quota.Request{{ID: "req-old", Tenant: "acme", Resource: "dcs.instances",
		Value: 3, Reason: evil, Status: quota.RequestPending, RequestedBy: "admin", CreatedAt: at, UpdatedAt: at,
		History: []quota.RequestStep{{Time: at, Actor: "admin", Status: quota.RequestPending, Comment: evil}}}}})
	if _, err := srv.Store.Commit(ctx, []quota.Tx{tx}); err != nil {
		t.Fatal(err)
	}

	r := allot(t, srv, "", "requests", "list")
	if r.code != 0 {
		t.Fatalf("requests list: %d %s", r.code, r.stderr)
	}
	if bad := rawUnsafe(r.stdout); bad != "" {
		t.Errorf("requests list printed %s:\n%q", bad, r.stdout)
	}
	for _, want := range []string{`please \x1b]52;c;cm0gLXJmIH4=\x07 then\x1b[2J \u202eevil\u2066 c1\u009b31m del\x7f ls\u2028 end`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("requests list does not show %s:\n%s", want, r.stdout)
		}
	}

	for _, format := range []string{"json", "yaml"} {
		r := allot(t, srv, "", "requests", "list", "-o", format)
		if r.code != 0 {
			t.Fatalf("-o %s: %d %s", format, r.code, r.stderr)
		}
		if bad := rawUnsafe(r.stdout); bad != "" {
			t.Errorf("-o %s printed %s:\n%q", format, bad, r.stdout)
		}
		var got struct {
			Requests []struct{ Reason string } `json:"requests" yaml:"requests"`
		}
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(r.stdout), &got)
		} else {
			err = yaml.Unmarshal([]byte(r.stdout), &got)
		}
		if err != nil || len(got.Requests) != 1 || got.Requests[0].Reason != evil {
			t.Errorf("-o %s does not decode to the reason (%v): %+v\n%s", format, err, got, r.stdout)
		}
	}
}

// fakeServer answers each "METHOD /path" with a canned status and body, and
// 404 to anything else.
func fakeServer(t *testing.T, answers map[string]func(w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := answers[r.Method+" "+r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.Error(w, "no answer for "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func answer(status int, v any) func(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
}

func runAt(t *testing.T, ctx context.Context, url, stdin string, args ...string) result {
	t.Helper()
	env := map[string]string{"ALLOT_SERVER": url, "ALLOT_TOKEN": "t"}
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// Every print site that shows what a tenant or a caller wrote escapes it, in
// tables, plain lines and error messages alike.
func TestTenantWrittenTextIsEscapedEverywhere(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	hard := int64(1)
	event := client.Event{Seq: 1, Time: at, Type: "consumer.put", Tenant: evil, Subject: evil, Actor: evil, Role: evil, Reason: evil}
	problem := client.Problem{Status: 409, Code: "quota_exceeded", Detail: evil, Title: evil,
		Violations: []client.Violation{{Resource: evil, Used: 1, Hard: 1, Requested: 1}, {Kind: evil, Attribute: evil}}}
	url := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /api/v1/tenants":                   answer(200, client.TenantList{Tenants: []client.Tenant{{ID: "acme", Name: evil, Plan: evil}}}),
		"POST /api/v1/tenants":                  answer(201, client.Tenant{ID: evil, Name: evil}),
		"GET /api/v1/tenants/acme/quotas":       answer(200, client.Quotas{Tenant: evil, Region: evil, Resources: []client.ResourceQuota{{Resource: "compute." + evil, Unit: evil}}, Limits: []client.Limit{{Kind: evil, Limit: evil}}}),
		"PUT /api/v1/tenants/acme/quotas/r":     answer(200, client.ResourceQuota{Resource: evil, Used: 2, Hard: hard, OverQuota: true}),
		"PUT /api/v1/tenants/acme/limits/k/l":   answer(200, client.Limit{Kind: evil, Limit: evil}),
		"PUT /api/v1/tenants/acme/consumers/c":  answer(200, client.Consumer{Consumer: evil, Kind: evil, State: evil, Attributes: map[string]int64{evil: 1}, Created: true}),
		"GET /api/v1/tenants/acme/consumers/c":  answer(409, problem),
		"GET /api/v1/tenants/acme/consumers":    answer(200, client.ConsumerList{Consumers: []client.Consumer{{Consumer: evil, Kind: evil}}}),
		"POST /api/v1/claims":                   answer(200, client.ClaimsResponse{Results: []client.Consumer{{Consumer: evil}}}),
		"GET /api/v1/tokens":                    answer(200, client.TokenList{Tokens: []client.Token{{Name: evil, Role: evil, Tenant: evil}}}),
		"POST /api/v1/tokens":                   answer(201, client.Token{Name: evil, Role: evil, Secret: evil}),
		"POST /api/v1/tenants/acme/credentials": answer(201, client.Credential{AccessKey: evil, SecretKey: evil}),
		"GET /api/v1/tenants/acme/credentials": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "{\"credentials\": 5, \"x\": \"%s\"}", evil) // a 2xx that does not decode: quoted in the error
		},
		"GET /api/v1/tenants/bad": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502) // not a problem: the body is quoted in the error
			fmt.Fprint(w, "<html>"+evil+"\nsecond line</html>")
		},
		"GET /api/v1/events":                           answer(200, client.EventList{Events: []client.Event{event}}),
		"GET /api/v1/requests":                         answer(200, client.RequestList{Requests: []client.Request{{ID: evil, Tenant: evil, Resource: evil, Reason: evil, Status: evil, RequestedBy: evil, History: []client.RequestStep{{Actor: evil, Comment: evil}}}}}),
		"POST /api/v1/tenants/acme/requests/1/approve": answer(200, client.Request{ID: "1", Reason: evil, History: []client.RequestStep{{Comment: evil}}}),
		"PUT /api/v1/tenants/acme/inventory":           answer(200, client.Reconciliation{Created: []string{evil}, Updated: []string{evil}, Deleted: []string{evil}}),
		"GET /api/v1/overquota":                        answer(200, client.OverQuotaList{Tenants: []client.OverQuotaTenant{{Tenant: evil, Resources: []client.OverQuotaResource{{Resource: evil}}}}}),
		"GET /api/v1/utilisation":                      answer(200, client.Utilisation{Tenants: []client.TenantUtilisation{{Tenant: client.Tenant{ID: evil}, Worst: client.ResourceQuota{Resource: evil}, Over: []string{evil}}}, Total: 1}),
		"GET /api/v1/webhooks":                         answer(200, client.WebhookList{Webhooks: []client.Webhook{{ID: evil, URL: "https://x.example/" + evil, Events: []string{evil}, Tenant: evil}}}),
		"POST /api/v1/webhooks":                        answer(201, client.Webhook{ID: evil, URL: evil}),
		"DELETE /api/v1/tenants/acme/consumers/c":      answer(422, client.Problem{Status: 422, Code: evil, Detail: evil}),
	})
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	os.WriteFile(inv, []byte("kinds: [k]\nconsumers: []\n"), 0o600)
	for _, args := range [][]string{
		{"tenants", "list"},
		{"tenants", "create", "x"},
		{"tenants", "get", "bad"},
		{"quotas", "get", "acme"},
		{"quotas", "set", "acme", "r", "1"},
		{"limits", "set", "acme", "k", "l", "1", "2"},
		{"consumers", "put", "acme", "c", "--kind", "k"},
		{"consumers", "get", "acme", "c"},
		{"consumers", "list", "acme"},
		{"consumers", "delete", "acme", "c"},
		{"claims", "apply", "-f", "-"},
		{"tokens", "list"},
		{"tokens", "create", "--role", "r", "--name", "n"},
		{"credentials", "create", "acme"},
		{"credentials", "list", "acme"},
		{"events"},
		{"requests", "list"},
		{"requests", "approve", "acme", "1"},
		{"reconcile", "acme", "-f", inv},
		{"overquota"},
		{"top"},
		{"webhooks", "list"},
		{"webhooks", "create", "https://x.example/", "--secret", "s"},
	} {
		for _, format := range []string{"table", "json", "yaml"} {
			name := strings.Join(args, " ") + " -o " + format
			t.Run(name, func(t *testing.T) {
				r := runAt(t, t.Context(), url, "operations: []\n", append(args, "-o", format)...)
				if bad := rawUnsafe(r.stdout); bad != "" {
					t.Errorf("stdout has %s:\n%q", bad, r.stdout)
				}
				if bad := rawUnsafe(r.stderr); bad != "" {
					t.Errorf("stderr has %s:\n%q", bad, r.stderr)
				}
				if !strings.Contains(r.stdout+r.stderr, `\u202e`) && !strings.Contains(r.stdout+r.stderr, `\u202E`) {
					t.Errorf("the tenant's text is not shown escaped:\nstdout %q\nstderr %q", r.stdout, r.stderr)
				}
				if r.code != 0 && strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") > 2 {
					t.Errorf("exit %d with more lines than the refusal has:\n%s", r.code, r.stderr)
				}
			})
		}
	}
}

// events --follow prints each event of the stream escaped, as a line of
// text or of JSON.
func TestFollowEventsEscapes(t *testing.T) {
	line, _ := json.Marshal(client.Event{Seq: 1, Type: "consumer.put", Tenant: "acme", Subject: evil, Actor: evil, Role: evil})
	url := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /api/v1/events/stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "id: 1\ndata: %s\n\n", line)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	})
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			stdout := &cancelOnWrite{cancel: cancel, after: "consumer.put"}
			var stderr bytes.Buffer
			env := map[string]string{"ALLOT_SERVER": url, "ALLOT_TOKEN": "t"}
			code := cli.Run(ctx, []string{"events", "--follow", "-o", format}, func(k string) string { return env[k] }, nil, stdout, &stderr)
			out := stdout.String()
			if code != 0 || !strings.Contains(out, "consumer.put") {
				t.Fatalf("exit %d, stdout %q, stderr %s", code, out, stderr.String())
			}
			if bad := rawUnsafe(out); bad != "" {
				t.Errorf("stdout has %s:\n%q", bad, out)
			}
			if !strings.Contains(out, `\u202e`) {
				t.Errorf("the subject is not shown escaped:\n%s", out)
			}
		})
	}
}

// cancelOnWrite collects what is written and cancels once it holds after.
type cancelOnWrite struct {
	bytes.Buffer
	cancel context.CancelFunc
	after  string
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.Buffer.String(), w.after) {
		w.cancel()
	}
	return n, err
}

// An id that is not one path segment is refused before anything is sent,
// in one line naming the argument, with the usage exit status.
func TestInvalidIDsSendNothing(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"consumers", "delete", "acme", ".."}, `consumer id ".." is not valid`},
		{[]string{"credentials", "revoke", "globex", ".."}, `access key ".." is not valid`},
		{[]string{"tenants", "delete", "."}, `tenant id "." is not valid`},
		{[]string{"consumers", "put", "acme", "a/b", "--kind", "k"}, `consumer id "a/b" is not valid`},
		{[]string{"requests", "approve", "acme", "%2e%2e"}, `request id "%2e%2e" is not valid`},
		{[]string{"quotas", "set", "..", "r", "1"}, `tenant id ".." is not valid`},
		{[]string{"limits", "set", "acme", "k", "a%2Fb", "1", "2"}, `limit "a%2Fb" is not valid`},
		{[]string{"webhooks", "delete", ""}, `webhook id "" is not valid`},
		{[]string{"events", "--tenant", "../x"}, `tenant id "../x" is not valid`},
		{[]string{"tokens", "revoke", "a\x1b[2J/b"}, `token name "a\x1b[2J/b" is not valid`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runAt(t, t.Context(), srv.URL, "", tc.args...)
			if n := requests.Swap(0); n != 0 {
				t.Errorf("%d requests reached the server", n)
			}
			if r.code != 2 || !strings.HasPrefix(r.stderr, "allot: ") || !strings.Contains(r.stderr, tc.want) ||
				strings.Count(r.stderr, "\n") != 1 || rawUnsafe(r.stderr) != "" {
				t.Errorf("exit %d, stderr %q; want 2 and one line with %s", r.code, r.stderr, tc.want)
			}
		})
	}
}

// On a real server the requests of the report leave the tenant alone (a
// tenant that owns nothing: the server would delete it).
func TestDotDotLeavesTheTenant(t *testing.T) {
	srv := setUp(t)
	if r := allot(t, srv, "", "tenants", "create", "initech"); r.code != 0 {
		t.Fatalf("tenants create: %s", r.stderr)
	}
	for _, args := range [][]string{
		{"consumers", "delete", "initech", ".."},
		{"credentials", "revoke", "initech", ".."},
		{"consumers", "delete", "initech", "%2e%2e"},
	} {
		if r := allot(t, srv, "", args...); r.code == 0 {
			t.Errorf("allot %v succeeded: %s", args, r.stdout)
		}
		if r := allot(t, srv, "", "tenants", "get", "initech"); r.code != 0 {
			t.Fatalf("after allot %v tenant initech is gone: %s", args, r.stderr)
		}
	}
}
