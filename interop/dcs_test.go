package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	dcs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2/model"
)

const adminToken = "interop-admin-token"

// allot is a real `allot serve`, built from this repository.
type allot struct {
	t   *testing.T
	url string
}

func startAllot(t *testing.T) *allot {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "allot")
	build := exec.Command("go", "build", "-o", bin, "./cmd/allot")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building allot: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN="+adminToken)
	out, _ := cmd.StderrPipe() // the start-up lines and the log
	var stderr syncBuffer
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("allot stderr:\n%s", stderr.String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			stderr.Write([]byte(sc.Text() + "\n"))
			if _, u, ok := strings.Cut(sc.Text(), " on http://"); ok {
				urls <- "http://" + u
			}
		}
	}()
	select {
	case u := <-urls:
		return &allot{t: t, url: u}
	case <-time.After(30 * time.Second):
		t.Fatalf("allot did not start:\n%s", stderr.String())
	}
	return nil
}

// call uses allot's native API as an operator would.
func (a *allot) call(method, path, body string, out any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatal(err)
		}
	}
}

type credential struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

func (a *allot) credential(project string) credential {
	a.t.Helper()
	var c credential
	a.call("POST", "/api/v1/tenants/"+project+"/credentials", "", &c)
	if c.AccessKey == "" || c.SecretKey == "" {
		a.t.Fatalf("no key pair returned: %+v", c)
	}
	return c
}

func (a *allot) dcsClient(ak, sk, project string) *dcs.DcsClient {
	a.t.Helper()
	cred, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(project).SafeBuild()
	if err != nil {
		a.t.Fatal(err)
	}
	hc, err := dcs.DcsClientBuilder().WithEndpoint(a.url).WithCredential(cred).SafeBuild()
	if err != nil {
		a.t.Fatal(err)
	}
	return dcs.NewDcsClient(hc)
}

const (
	projectA = "0123456789abcdef0123456789abcdef"
	projectB = "fedcba9876543210fedcba9876543210"
)

func TestShowQuotaOfTenant(t *testing.T) {
	a := startAllot(t)
	for _, p := range []string{projectA, projectB} {
		a.call("POST", "/api/v1/tenants", fmt.Sprintf(`{"id":%q,"name":"project %s"}`, p, p[:4]), nil)
	}
	a.call("PUT", "/api/v1/tenants/"+projectA+"/quotas/dcs.instances", `{"hard":7}`, nil)
	// Three caches: 1 GiB, 2 GiB and 128 MiB, so RAM in use is 3.125 GB, shown as 4.
	for i, mb := range []int{1024, 2048, 128} {
		a.call("PUT", fmt.Sprintf("/api/v1/tenants/%s/consumers/redis-%d", projectA, i),
			fmt.Sprintf(`{"kind":"dcs.instance","attributes":{"capacity_mb":%d}}`, mb), nil)
	}
	key := a.credential(projectA)

	resp, err := a.dcsClient(key.AccessKey, key.SecretKey, projectA).ShowQuotaOfTenant(&model.ShowQuotaOfTenantRequest{})
	if err != nil {
		t.Fatalf("ShowQuotaOfTenant: %v", err)
	}
	if resp.HttpStatusCode != 200 || resp.Quotas == nil || resp.Quotas.Resources == nil || len(*resp.Quotas.Resources) != 2 {
		t.Fatalf("answer = %+v", resp)
	}
	rows := *resp.Quotas.Resources
	type row struct {
		typ, unit             string
		hasUnit               bool
		min, max, quota, used int32
	}
	got := func(r model.Resources) row {
		out := row{typ: *r.Type, min: *r.Min, max: *r.Max, quota: *r.Quota, used: *r.Used}
		if r.Unit != nil {
			out.unit, out.hasUnit = *r.Unit, true
		}
		return out
	}
	if g, want := got(rows[0]), (row{typ: "instance", min: 1, max: 10, quota: 7, used: 3}); g != want {
		t.Errorf("instance row = %+v, want %+v", g, want)
	}
	if g, want := got(rows[1]), (row{typ: "ram", unit: "GB", hasUnit: true, min: 1, max: 800, quota: 800, used: 4}); g != want {
		t.Errorf("ram row = %+v, want %+v", g, want)
	}

	refused := func(name string, c *dcs.DcsClient, status int, code string) {
		t.Helper()
		_, err := c.ShowQuotaOfTenant(&model.ShowQuotaOfTenantRequest{})
		var sre *sdkerr.ServiceResponseError
		if !errors.As(err, &sre) {
			t.Fatalf("%s: err = %v (%T), want a ServiceResponseError", name, err, err)
		}
		if sre.StatusCode != status || sre.ErrorCode != code {
			t.Errorf("%s: status %d code %q, want %d %q (%s)", name, sre.StatusCode, sre.ErrorCode, status, code, sre.ErrorMessage)
		}
	}
	wrongSK := strings.Repeat("x", len(key.SecretKey))
	refused("wrong secret key", a.dcsClient(key.AccessKey, wrongSK, projectA), 401, "APIGW.0301")
	refused("another project's ID", a.dcsClient(key.AccessKey, key.SecretKey, projectB), 401, "DCS.1004")
	refused("a malformed project ID", a.dcsClient(key.AccessKey, key.SecretKey, "not-a-project"), 400, "DCS.4002")
	refused("a missing project ID", a.dcsClient(key.AccessKey, key.SecretKey, ""), 400, "DCS.4002")

	a.call("DELETE", "/api/v1/tenants/"+projectA+"/credentials/"+key.AccessKey, "", nil)
	refused("revoked key", a.dcsClient(key.AccessKey, key.SecretKey, projectA), 401, "APIGW.0301")
}

// syncBuffer is a buffer one goroutine fills while a test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
