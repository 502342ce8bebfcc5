package main_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/testserver"
)

// allot serve over HTTPS with a certificate of a CA the test makes: the
// CLI reaches it with --ca-cert (or ALLOT_CA_CERT) and not without, and
// SIGHUP loads a renewed certificate.
func TestServeOverTLS(t *testing.T) {
	ca := testserver.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, "first", cert, key)
	p := start(t, t.TempDir(), "ALLOT_ADMIN_TOKEN="+adminToken, "ALLOT_TLS_CERT="+cert, "ALLOT_TLS_KEY="+key)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("serving on %s", p.url)
	}

	cli := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(binary, append([]string{"tenants", "list", "--server", p.url}, args...)...)
		cmd.Env = append(os.Environ(), append(env, "ALLOT_TOKEN="+adminToken)...)
		out, err := runFor(cmd, 20*time.Second)
		if ee, ok := err.(*exec.ExitError); ok {
			return out, ee.ExitCode()
		}
		return out, 0
	}
	if out, code := cli(nil, "--ca-cert", ca.File); code != 0 {
		t.Errorf("allot tenants list --ca-cert: exit %d\n%s", code, out)
	}
	if out, code := cli([]string{"ALLOT_CA_CERT=" + ca.File}); code != 0 {
		t.Errorf("allot tenants list with ALLOT_CA_CERT: exit %d\n%s", code, out)
	}
	if out, code := cli(nil); code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("allot tenants list with the system's CAs: exit %d, want 1 and a certificate error\n%s", code, out)
	}
	if out, code := cli(nil, "--ca-cert", cert+".missing"); code != 2 {
		t.Errorf("a missing --ca-cert file: exit %d, want 2\n%s", code, out)
	}

	// Renew the certificate in place, keeping the files' sizes and times,
	// so only SIGHUP can tell allot.
	stamp := func(path string) os.FileInfo {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	oldCert, oldKey := stamp(cert), stamp(key)
	ca.Issue(t, "again", cert, key)
	for path, old := range map[string]os.FileInfo{cert: oldCert, key: oldKey} {
		if err := os.Chtimes(path, old.ModTime(), old.ModTime()); err != nil {
			t.Fatal(err)
		}
		if stamp(path).Size() != old.Size() {
			t.Fatalf("%s changed size; the test needs it kept", path)
		}
	}
	if cn := servedName(t, ca, p.url); cn != "first" {
		t.Fatalf("served %q before SIGHUP", cn)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for servedName(t, ca, p.url) != "again" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.cmd.ProcessState != nil {
		t.Fatal("SIGHUP ended allot")
	}
}

// servedName is the common name of the certificate a new connection gets.
func servedName(t *testing.T, ca *testserver.CA, url string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].Subject.CommonName
}
