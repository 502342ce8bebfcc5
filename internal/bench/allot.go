package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/allot-dev/allot/client"
)

// allotTarget drives allot over HTTP. The measured requests are plain
// net/http with bodies encoded once; setup, checks and cleanup go through
// the public client.
type allotTarget struct {
	bases []string // the measured requests go to each in turn
	next  atomic.Uint64
	token string
	http  *http.Client
	api   *client.Client
}

func newAllotTarget(bases []string, token string, hc *http.Client) *allotTarget {
	return &allotTarget{bases: bases, token: token, http: hc, api: client.New(bases[0], client.WithToken(token), client.WithHTTPClient(hc))}
}

var instanceBody = []byte(`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)

func (a *allotTarget) claim(ctx context.Context, tenant, id string) (outcome, error) {
	return a.send(ctx, http.MethodPut, "/api/v1/tenants/"+tenant+"/consumers/"+id, a.token, instanceBody)
}

func (a *allotTarget) release(ctx context.Context, tenant, id string) (outcome, error) {
	return a.send(ctx, http.MethodDelete, "/api/v1/tenants/"+tenant+"/consumers/"+id, a.token, nil)
}

func (a *allotTarget) batch(ctx context.Context, ops []client.Operation) (outcome, error) {
	body, err := json.Marshal(client.ClaimsRequest{Operations: ops})
	if err != nil {
		return failed, err
	}
	return a.send(ctx, http.MethodPost, "/api/v1/claims", a.token, body)
}

// read asks for a tenant's quotas in the KraftCloud dialect, with the
// tenant's own token, as kraftkit does.
func (a *allotTarget) read(ctx context.Context, token string) (outcome, error) {
	return a.send(ctx, http.MethodGet, "/v1/users/quotas", token, nil)
}

// send makes one request: a 2xx is admitted, a 409 quota_exceeded refused,
// anything else failed.
func (a *allotTarget) send(ctx context.Context, method, path, token string, body []byte) (outcome, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	base := a.bases[a.next.Add(1)%uint64(len(a.bases))]
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return failed, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return failed, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		// Read to the end, so the connection is reused.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return failed, err
		}
		return admitted, nil
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var p client.Problem
	if resp.StatusCode == http.StatusConflict && json.Unmarshal(answer, &p) == nil && p.Code == "quota_exceeded" {
		return refused, nil
	}
	return failed, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(answer))
}

// setup creates the plan's tenants with their quotas and, for the read
// workloads, a tenant token each.
func (a *allotTarget) setup(ctx context.Context, p *plan) error {
	for _, n := range p.nodes { // parents first
		if _, err := a.api.CreateTenant(ctx, client.CreateTenantRequest{ID: n.id, Name: n.id, Parent: n.parent}); err != nil {
			return fmt.Errorf("creating tenant %s: %w", n.id, err)
		}
		if _, err := a.api.SetQuota(ctx, n.id, instances, client.SetQuotaRequest{Hard: &n.hard}); err != nil {
			return fmt.Errorf("setting the quota of %s: %w", n.id, err)
		}
	}
	return parallel(len(p.tenants), func(i int) error {
		t := p.tenants[i]
		parent := ""
		if p.parent != nil {
			parent = p.parent[i]
		}
		if _, err := a.api.CreateTenant(ctx, client.CreateTenantRequest{ID: t, Name: t, Parent: parent}); err != nil {
			return fmt.Errorf("creating tenant %s: %w", t, err)
		}
		if _, err := a.api.SetQuota(ctx, t, instances, client.SetQuotaRequest{Hard: &p.hard[i]}); err != nil {
			return fmt.Errorf("setting the quota of %s: %w", t, err)
		}
		if !p.reads {
			return nil
		}
		tok, err := a.api.CreateToken(ctx, client.CreateTokenRequest{Role: "tenant", Tenant: t, Name: t})
		if err != nil {
			return fmt.Errorf("creating a token for %s: %w", t, err)
		}
		p.tokens[i] = tok.Secret
		return nil
	})
}

// check reads each tenant back through the API and returns the overshoot:
// how far usage is above hard quotas, plus how far usage is from the sum
// of the consumers' footprints. The tenants are the run's own, created
// empty, so none started above its quota.
func (a *allotTarget) check(ctx context.Context, tenants []string) (overshoot int64, problems []string, err error) {
	for _, t := range tenants {
		q, err := a.api.Quotas(ctx, t)
		if err != nil {
			return 0, nil, err
		}
		cs, err := a.consumers(ctx, t)
		if err != nil {
			return 0, nil, err
		}
		sum := map[string]int64{}
		for _, c := range cs {
			for r, v := range c.Footprint {
				sum[r] += v
			}
		}
		for _, r := range q.Resources {
			if r.Used > r.Hard {
				overshoot += r.Used - r.Hard
				problems = append(problems, fmt.Sprintf("%s: %s used %d, above its hard quota %d", t, r.Resource, r.Used, r.Hard))
			}
			if r.Source == client.SourceOverride && r.Tree > r.Hard {
				overshoot += r.Tree - r.Hard
				problems = append(problems, fmt.Sprintf("%s: %s tree usage %d, above its hard quota %d", t, r.Resource, r.Tree, r.Hard))
			}
			if d := r.Used - sum[r.Resource]; d != 0 {
				overshoot += max(d, -d)
				problems = append(problems, fmt.Sprintf("%s: %s used %d, but its %d consumers' footprints add up to %d", t, r.Resource, r.Used, len(cs), sum[r.Resource]))
			}
			delete(sum, r.Resource)
		}
		for _, r := range slices.Sorted(maps.Keys(sum)) {
			overshoot += sum[r]
			problems = append(problems, fmt.Sprintf("%s: consumers use %d of %s, which its quotas do not list", t, sum[r], r))
		}
	}
	return overshoot, problems, nil
}

// consumers lists all of a tenant's consumers, page by page.
func (a *allotTarget) consumers(ctx context.Context, tenant string) ([]client.Consumer, error) {
	var all []client.Consumer
	q := client.ConsumerQuery{Limit: 1000}
	for {
		page, err := a.api.Consumers(ctx, tenant, q)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Consumers...)
		if page.NextCursor == "" {
			return all, nil
		}
		q.Cursor = page.NextCursor
	}
}

// cleanup deletes the run's consumers and tenants (and with them their
// tokens) from a server the run did not start. It only logs failures.
func (a *allotTarget) cleanup(ctx context.Context, tenants []string, log io.Writer) {
	err := parallel(len(tenants), func(i int) error {
		cs, err := a.consumers(ctx, tenants[i])
		if client.IsCode(err, "not_found") {
			return nil // setup failed before it was created
		}
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(cs, 1000) {
			req := client.ClaimsRequest{}
			for _, c := range chunk {
				req.Operations = append(req.Operations, client.Operation{Op: "delete", Tenant: c.Tenant, Consumer: c.Consumer})
			}
			if _, err := a.api.Claims(ctx, req); err != nil {
				return err
			}
		}
		return a.api.DeleteTenant(ctx, tenants[i])
	})
	if err != nil {
		fmt.Fprintf(log, "allot bench: removing the run's tenants: %v\n", err)
	}
}

// parallel calls fn(0) … fn(n-1), 16 at a time, and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(n, 16) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
