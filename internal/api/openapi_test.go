package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/testserver"
)

// openAPIFile is the document that openapi.go embeds with go:embed;
// TestOpenAPIServed checks that the server serves exactly these bytes.
const openAPIFile = "openapi.json"

// openAPIMethods are the keys of a path item that are operations.
var openAPIMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true,
}

// openAPIDoc is the part of the document the tests look at.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

func readOpenAPI(t *testing.T) ([]byte, openAPIDoc) {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	return raw, doc
}

// routeRecorder is an api.Router that only notes the patterns registered.
type routeRecorder struct {
	t      *testing.T
	routes map[string]bool // "METHOD /path"
}

func (r *routeRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		r.t.Errorf("route %q has no method: the document cannot describe it", pattern)
		return
	}
	key := method + " " + path
	if r.routes[key] {
		r.t.Errorf("route %q is registered twice", key)
	}
	r.routes[key] = true
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := testserver.Start(t)
	rec := &routeRecorder{t: t, routes: map[string]bool{}}
	native, err := api.New(api.Config{Engine: srv.Engine, Store: srv.Store, Sealer: srv.Sealer, Region: "local", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	native.Routes(rec)
	if len(rec.routes) == 0 {
		t.Fatal("Routes registered nothing")
	}

	_, doc := readOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for key := range item {
			if openAPIMethods[key] {
				documented[strings.ToUpper(key)+" "+path] = true
			}
		}
	}

	var missing, extra []string
	for r := range rec.routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !rec.routes[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for _, r := range missing {
		t.Errorf("route %s is not in %s", r, openAPIFile)
	}
	for _, d := range extra {
		t.Errorf("%s documents %s, which the API does not route", openAPIFile, d)
	}
}

// pathParamRE finds the parameters of a path template.
var pathParamRE = regexp.MustCompile(`\{([^{}]*)\}`)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	raw, doc := readOpenAPI(t)
	if !json.Valid(raw) {
		t.Fatal("not valid JSON")
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	var whole any
	if err := json.Unmarshal(raw, &whole); err != nil {
		t.Fatal(err)
	}
	info, _ := pointer(whole, "/info").(map[string]any)
	if info["title"] != "allot" || info["version"] != "1" {
		t.Errorf("info = %v", info)
	}

	// Every $ref names an entry under components.
	refs := 0
	walkJSON(whole, func(m map[string]any) {
		v, ok := m["$ref"]
		if !ok {
			return
		}
		refs++
		ref, _ := v.(string)
		p, ok := strings.CutPrefix(ref, "#/components/")
		if !ok || strings.Count(p, "/") != 1 {
			t.Errorf("$ref %q does not name an entry under components", ref)
			return
		}
		if pointer(whole, ref[1:]) == nil {
			t.Errorf("$ref %q resolves to nothing", ref)
		}
	})
	if refs == 0 {
		t.Error("no $ref at all: the shared components are not used")
	}

	// Every parameter of a path template is declared, in: path and
	// required, for each operation; and nothing else is declared in: path.
	// Operation ids are unique.
	resolve := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
			m, _ = pointer(whole, ref[1:]).(map[string]any)
		}
		return m
	}
	params := func(v any) []map[string]any {
		list, _ := v.([]any)
		out := make([]map[string]any, 0, len(list))
		for _, p := range list {
			out = append(out, resolve(p))
		}
		return out
	}
	ids := map[string]string{}
	paths, _ := pointer(whole, "/paths").(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}
	for path, v := range paths {
		item, _ := v.(map[string]any)
		var want []string
		for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		ops := 0
		for method, o := range item {
			if !openAPIMethods[method] {
				continue
			}
			ops++
			op, _ := o.(map[string]any)
			where := strings.ToUpper(method) + " " + path
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s: operationId %q is also that of %s", where, id, other)
			} else {
				ids[id] = where
			}
			if resp, _ := op["responses"].(map[string]any); len(resp) == 0 {
				t.Errorf("%s: no responses", where)
			}
			declared := map[string]bool{}
			// Operation-level parameters override path-level ones of the same name and in.
			for _, p := range append(params(item["parameters"]), params(op["parameters"])...) {
				if p == nil {
					t.Errorf("%s: a parameter does not resolve", where)
					continue
				}
				if p["in"] != "path" {
					continue
				}
				name, _ := p["name"].(string)
				declared[name] = p["required"] == true
			}
			for _, name := range want {
				required, ok := declared[name]
				switch {
				case !ok:
					t.Errorf("%s: path parameter {%s} is not declared", where, name)
				case !required:
					t.Errorf("%s: path parameter {%s} is not required: true", where, name)
				}
			}
			for name := range declared {
				if !slices.Contains(want, name) {
					t.Errorf("%s: declares path parameter %q, which the template lacks", where, name)
				}
			}
		}
		if ops == 0 {
			t.Errorf("%s: no operations", path)
		}
	}
}

// TestOpenAPISchemasMatchWireTypes holds each schema's properties to the
// JSON field names of the client type it describes.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	_, doc := readOpenAPI(t)
	types := map[string]any{
		"Tenant": client.Tenant{}, "CreateTenantRequest": client.CreateTenantRequest{}, "TenantList": client.TenantList{},
		"Range": client.Range{}, "Quotas": client.Quotas{}, "ResourceQuota": client.ResourceQuota{}, "Limit": client.Limit{},
		"SetQuotaRequest": client.SetQuotaRequest{}, "SetLimitRequest": client.SetLimitRequest{},
		"PutConsumerRequest": client.PutConsumerRequest{}, "Consumer": client.Consumer{}, "ConsumerList": client.ConsumerList{},
		"ClaimsRequest": client.ClaimsRequest{}, "Operation": client.Operation{}, "ClaimsResponse": client.ClaimsResponse{},
		"CreateTokenRequest": client.CreateTokenRequest{}, "Token": client.Token{}, "TokenList": client.TokenList{},
		"Credential": client.Credential{}, "CredentialList": client.CredentialList{},
		"Event": client.Event{}, "EventList": client.EventList{}, "Problem": client.Problem{},
		"CreateRequestRequest": client.CreateRequestRequest{}, "Request": client.Request{}, "RequestStep": client.RequestStep{},
		"RequestList": client.RequestList{}, "DecideRequest": client.DecideRequest{}, "Inventory": client.Inventory{},
		"InventoryConsumer": client.InventoryConsumer{}, "Reconciliation": client.Reconciliation{},
		"OverQuotaList": client.OverQuotaList{}, "OverQuotaTenant": client.OverQuotaTenant{}, "OverQuotaResource": client.OverQuotaResource{},
		"UsageAt": client.UsageAt{}, "UsageResource": client.UsageResource{}, "CreateWebhookRequest": client.CreateWebhookRequest{},
		"Webhook": client.Webhook{}, "WebhookList": client.WebhookList{}, "Thresholds": client.Thresholds{},
		"UpdateTenantRequest": client.UpdateTenantRequest{}, "UsageHistory": client.UsageHistory{},
		"Utilisation": client.Utilisation{}, "TenantUtilisation": client.TenantUtilisation{},
		"NearLimit": client.NearLimit{}, "NearLimitRow": client.NearLimitRow{},
		"Tree": client.Tree{}, "TreeNode": client.TreeNode{}, "TreeResource": client.TreeResource{},
	}
	schemas := doc.Components["schemas"]
	properties := func(name string) []string {
		t.Helper()
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		raw, ok := schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			return nil
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		for _, r := range s.Required {
			if _, ok := s.Properties[r]; !ok {
				t.Errorf("schema %s requires %q, which it does not define", name, r)
			}
		}
		out := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	for name, v := range types {
		if got, want := properties(name), jsonFields(reflect.TypeOf(v)); !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v; %T has %v", name, got, v, want)
		}
	}
	// A violation is one of two shapes; together they are client.Violation.
	got := append(properties("ResourceViolation"), properties("AttributeViolation")...)
	slices.Sort(got)
	if want := jsonFields(reflect.TypeOf(client.Violation{})); !slices.Equal(got, want) {
		t.Errorf("the violation schemas have properties %v; client.Violation has %v", got, want)
	}
}

func TestOpenAPIServed(t *testing.T) {
	want, _ := readOpenAPI(t)
	srv := testserver.Start(t)
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json") // no token: the document is public
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("served %d bytes that differ from the %d of %s", len(got), len(want), openAPIFile)
	}
}

// jsonFields lists the sorted JSON names of a struct's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// walkJSON calls fn on every object of a decoded JSON value.
func walkJSON(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(v)
		for _, x := range v {
			walkJSON(x, fn)
		}
	case []any:
		for _, x := range v {
			walkJSON(x, fn)
		}
	}
}

// pointer resolves a JSON pointer (RFC 6901) in a decoded JSON value; nil
// when it leads nowhere.
func pointer(v any, ptr string) any {
	if ptr == "" {
		return v
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[tok]; !ok {
			return nil
		}
	}
	return v
}
