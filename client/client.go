// Package client is the Go client of allot's native API (/api/v1).
//
//	c := client.New("http://127.0.0.1:8080", client.WithToken(token))
//	_, err := c.PutConsumer(ctx, "acme", "vm-1", client.PutConsumerRequest{
//		Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256},
//	}, client.PutOptions{})
//	if client.IsCode(err, "quota_exceeded") { … }
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Client calls one allot server. It is safe for concurrent use.
type Client struct {
	base    string
	token   string
	http    *http.Client
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the bearer token sent with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (transport, TLS, proxies).
// A nil h keeps http.DefaultClient.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithRootCAs makes the client trust, for HTTPS, the certificate
// authorities in pool instead of the system's (a nil pool: the system's).
// It sets an HTTP client of its own, in place of WithHTTPClient's.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(c *Client) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.http = &http.Client{Transport: t}
	}
}

// WithTimeout bounds every call, on top of the caller's context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client of the server at baseURL (e.g. http://127.0.0.1:8080).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: http.DefaultClient, timeout: 30 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is a refusal or failure the server answered with a problem.
type Error struct {
	Status  int
	Problem Problem
}

func (e *Error) Error() string {
	if e.Problem.Detail == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Problem.Code, e.Status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Problem.Code, e.Problem.Detail, e.Status)
}

// IsCode reports whether err is an *Error with the given problem code.
func IsCode(err error, code string) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Problem.Code == code
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
// Nothing is sent when to could not be built.
func (c *Client) do(ctx context.Context, method string, to target, query url.Values, header http.Header, in, out any) error {
	if to.err != nil {
		return to.err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("allot: encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + to.path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("allot: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("allot: cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("allot: reading the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		if err := json.Unmarshal(data, &e.Problem); err != nil || e.Problem.Code == "" {
			e.Problem = Problem{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode),
				Detail: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, snippet(data))}
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := decodeAnswer(data, out); err != nil {
		return fmt.Errorf("allot: the answer (HTTP %d) is not what was expected: %w: %s", resp.StatusCode, err, snippet(data))
	}
	return nil
}

// call sends a request and decodes its answer into a new T; on error it
// returns nil.
func call[T any](ctx context.Context, c *Client, method string, to target, query url.Values, header http.Header, in any) (*T, error) {
	out := new(T)
	if err := c.do(ctx, method, to, query, header, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeAnswer decodes a success answer into out, a pointer to a struct.
// Unknown fields are allowed (a newer server may add some), but the answer
// must be an object with at least one of out's fields: a proxy's null or a
// stray document is an error, not an empty value.
func decodeAnswer(data []byte, out any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	if fields == nil {
		return errors.New("null instead of an object")
	}
	if err := json.Unmarshal(data, out); err != nil {
		return err
	}
	t := reflect.TypeOf(out).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if _, ok := fields[name]; ok && name != "" && name != "-" {
			return nil
		}
	}
	return fmt.Errorf("none of the fields of %s", t.Name())
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "\uFFFD")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// CreateTenant creates a tenant.
func (c *Client) CreateTenant(ctx context.Context, req CreateTenantRequest) (*Tenant, error) {
	return call[Tenant](ctx, c, "POST", route("/tenants"), nil, nil, req)
}

// Tenants lists every tenant.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	l, err := call[TenantList](ctx, c, "GET", route("/tenants"), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Tenants, nil
}

// Tenant reads one tenant.
func (c *Client) Tenant(ctx context.Context, id string) (*Tenant, error) {
	return call[Tenant](ctx, c, "GET", route("/tenants/{tenant id}", id), nil, nil, nil)
}

// UpdateTenant renames a tenant or moves it to another plan.
func (c *Client) UpdateTenant(ctx context.Context, id string, req UpdateTenantRequest) (*Tenant, error) {
	return call[Tenant](ctx, c, "PATCH", route("/tenants/{tenant id}", id), nil, nil, req)
}

// DeleteTenant deletes a tenant that owns no consumers.
func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", route("/tenants/{tenant id}", id), nil, nil, nil, nil)
}

// Quotas reads a tenant's usage, hard quotas, requestable ranges and limits.
func (c *Client) Quotas(ctx context.Context, tenant string) (*Quotas, error) {
	return call[Quotas](ctx, c, "GET", route("/tenants/{tenant id}/quotas", tenant), nil, nil, nil)
}

// Tree reads a tenant and every tenant below it, with their usage.
func (c *Client) Tree(ctx context.Context, tenant string) (*Tree, error) {
	return call[Tree](ctx, c, "GET", route("/tenants/{tenant id}/tree", tenant), nil, nil, nil)
}

// SetQuota sets a tenant's hard quota (and optionally requestable range) of a resource.
func (c *Client) SetQuota(ctx context.Context, tenant, resource string, req SetQuotaRequest) (*ResourceQuota, error) {
	return call[ResourceQuota](ctx, c, "PUT", route("/tenants/{tenant id}/quotas/{resource}", tenant, resource), nil, nil, req)
}

// SetLimit sets a tenant's per-object limit of a kind.
func (c *Client) SetLimit(ctx context.Context, tenant, kind, limit string, req SetLimitRequest) (*Limit, error) {
	return call[Limit](ctx, c, "PUT", route("/tenants/{tenant id}/limits/{kind}/{limit}", tenant, kind, limit), nil, nil, req)
}

// PutOptions qualify a consumer write.
type PutOptions struct {
	DryRun  bool  // answer what would happen, change nothing
	IfMatch int64 // only if the consumer is at this generation
}

func (o PutOptions) apply() (url.Values, http.Header) {
	var q url.Values
	if o.DryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	h := http.Header{}
	if o.IfMatch != 0 { // the server refuses a negative generation
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(o.IfMatch, 10)))
	}
	return q, h
}

// PutConsumer creates or updates a consumer: the claim itself.
func (c *Client) PutConsumer(ctx context.Context, tenant, id string, req PutConsumerRequest, opts PutOptions) (*Consumer, error) {
	q, h := opts.apply()
	return call[Consumer](ctx, c, "PUT", route("/tenants/{tenant id}/consumers/{consumer id}", tenant, id), q, h, req)
}

// DeleteOptions qualify a consumer delete.
type DeleteOptions = PutOptions

// DeleteConsumer deletes a consumer, releasing what it used.
func (c *Client) DeleteConsumer(ctx context.Context, tenant, id string, opts DeleteOptions) error {
	q, h := opts.apply()
	return c.do(ctx, "DELETE", route("/tenants/{tenant id}/consumers/{consumer id}", tenant, id), q, h, nil, nil)
}

// Consumer reads one consumer.
func (c *Client) Consumer(ctx context.Context, tenant, id string) (*Consumer, error) {
	return call[Consumer](ctx, c, "GET", route("/tenants/{tenant id}/consumers/{consumer id}", tenant, id), nil, nil, nil)
}

// ConsumerQuery selects a page of consumers.
type ConsumerQuery struct {
	Kind, State string
	Limit       int
	Cursor      string
}

// Consumers reads a page of a tenant's consumers; pass NextCursor on.
func (c *Client) Consumers(ctx context.Context, tenant string, q ConsumerQuery) (*ConsumerList, error) {
	v := url.Values{}
	for k, s := range map[string]string{"kind": q.Kind, "state": q.State, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return call[ConsumerList](ctx, c, "GET", route("/tenants/{tenant id}/consumers", tenant), v, nil, nil)
}

// Claims applies a batch of puts and deletes: all or none.
func (c *Client) Claims(ctx context.Context, req ClaimsRequest) (*ClaimsResponse, error) {
	return call[ClaimsResponse](ctx, c, "POST", route("/claims"), nil, nil, req)
}

// CreateToken creates an API token; its secret is in Token.Secret, once.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (*Token, error) {
	return call[Token](ctx, c, "POST", route("/tokens"), nil, nil, req)
}

// Tokens lists the API tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	l, err := call[TokenList](ctx, c, "GET", route("/tokens"), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Tokens, nil
}

// RevokeToken revokes a token; it stops working at once.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", route("/tokens/{token name}", name), nil, nil, nil, nil)
}

// CreateCredential creates an AK/SK pair for a tenant; the secret key is in
// the answer, once.
func (c *Client) CreateCredential(ctx context.Context, tenant string) (*Credential, error) {
	return call[Credential](ctx, c, "POST", route("/tenants/{tenant id}/credentials", tenant), nil, nil, nil)
}

// Credentials lists a tenant's access keys (never the secret keys).
func (c *Client) Credentials(ctx context.Context, tenant string) ([]Credential, error) {
	l, err := call[CredentialList](ctx, c, "GET", route("/tenants/{tenant id}/credentials", tenant), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Credentials, nil
}

// RevokeCredential revokes an access key; it stops working at once.
func (c *Client) RevokeCredential(ctx context.Context, tenant, accessKey string) error {
	return c.do(ctx, "DELETE", route("/tenants/{tenant id}/credentials/{access key}", tenant, accessKey), nil, nil, nil, nil)
}
