package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/testserver"
)

// served is the common name of the certificate a request was answered
// with, and whether it came over a connection already open.
func served(t *testing.T, c *http.Client, url string) (string, bool) {
	t.Helper()
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/healthz", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET %s: %s, TLS %v", url, resp.Status, resp.TLS != nil)
	}
	return resp.TLS.PeerCertificates[0].Subject.CommonName, reused
}

func trusting(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestTLSWithAGeneratedCA(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "allot-1", cert, key)
	r := start(t, func(c *server.Config) { c.TLSCert, c.TLSKey, c.MetricsListen = cert, key, "127.0.0.1:0" })
	if !strings.HasPrefix(r.URL, "https://") || !strings.HasPrefix(r.MetricsURL, "https://") {
		t.Fatalf("URLs %s, %s", r.URL, r.MetricsURL)
	}
	if cn, _ := served(t, trusting(ca.Pool), r.URL); cn != "allot-1" {
		t.Errorf("served %q", cn)
	}
	if code, _ := get(t, trusting(ca.Pool), r.MetricsURL+"/metrics"); code != 200 {
		t.Errorf("metrics over TLS: %d", code)
	}

	// The client: with the CA it works; with the system's pool it must not.
	if _, err := client.New(r.URL, client.WithToken(adminToken), client.WithRootCAs(ca.Pool)).Tenants(context.Background()); err != nil {
		t.Errorf("client with the CA: %v", err)
	}
	_, err := client.New(r.URL, client.WithToken(adminToken)).Tenants(context.Background())
	if _, unknown := errors.AsType[x509.UnknownAuthorityError](err); !unknown {
		t.Errorf("client with the system's pool: %v, want an unknown authority", err)
	}
	// Plain HTTP to the TLS port gets nothing of the API.
	if resp, err := http.Get("http://" + r.Addr.String() + "/api/v1/tenants"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %s %s", resp.Status, b)
		}
	}
}

// A renewed certificate is served to new connections once its files
// change, without a restart; connections open before keep working.
func TestTLSCertificateReloadKeepsConnections(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "first", cert, key)
	r := start(t, func(c *server.Config) { c.TLSCert, c.TLSKey, c.TLSReload = cert, key, 20*time.Millisecond })
	open := trusting(ca.Pool) // keeps its connection alive
	if cn, _ := served(t, open, r.URL); cn != "first" {
		t.Fatalf("served %q", cn)
	}

	ca.Issue(t, "again", cert, key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		fresh := trusting(ca.Pool)
		cn, _ := served(t, fresh, r.URL)
		fresh.CloseIdleConnections()
		if cn == "again" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q after the files changed", cn)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cn, reused := served(t, open, r.URL)
	if !reused || cn != "first" {
		t.Errorf("the connection open before the reload: reused %v, certificate %q; want it kept", reused, cn)
	}
}

// A pair that does not load is not served: the previous pair stays.
func TestTLSBadReloadKeepsThePreviousCertificate(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "first", cert, key)
	r := start(t, func(c *server.Config) { c.TLSCert, c.TLSKey, c.TLSReload = cert, key, 20*time.Millisecond })

	// A new certificate whose key has not been written yet: a mismatch.
	other := t.TempDir()
	ca.Issue(t, "again", filepath.Join(other, "cert.pem"), filepath.Join(other, "key.pem"))
	b, _ := os.ReadFile(filepath.Join(other, "cert.pem"))
	if err := os.WriteFile(cert, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadTLS(); err == nil {
		t.Fatal("a certificate with another's key was loaded")
	}
	time.Sleep(100 * time.Millisecond) // the watcher tries too
	fresh := trusting(ca.Pool)
	if cn, _ := served(t, fresh, r.URL); cn != "first" {
		t.Errorf("served %q, want the previous certificate", cn)
	}
	fresh.CloseIdleConnections()

	// The key arrives: the pair loads.
	b, _ = os.ReadFile(filepath.Join(other, "key.pem"))
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if cn, _ := served(t, trusting(ca.Pool), r.URL); cn != "again" {
		t.Errorf("served %q after the key arrived", cn)
	}
}
