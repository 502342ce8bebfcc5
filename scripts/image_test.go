package scripts_test

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The image holds the static binary, the CA certificates and a non-root
// user, with the OCI labels and serve on 0.0.0.0:8080 with /data. Podman
// builds images here but cannot run containers (the sandbox refuses the
// runtime's setrlimit), so the test creates a container, exports its file
// system, checks it, and runs the exported binary to serve a request.
// Podman keeps its storage and state in the test's temporary directory.
func TestContainerImage(t *testing.T) {
	_, err := exec.LookPath("podman")
	needs(t, err == nil, "podman is not installed (apt-get install podman)")
	tmp := t.TempDir()
	podman := []string{"--root", filepath.Join(tmp, "root"), "--runroot", filepath.Join(tmp, "runroot"),
		"--tmpdir", filepath.Join(tmp, "tmp"), "--network-config-dir", filepath.Join(tmp, "net"),
		"--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("podman", append(podman, args...)...).Output()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
		}
		return strings.TrimSpace(string(out))
	}
	const tag = "localhost/allot-test:v0.0.0-image"
	script(t, repoRoot, append(fixedBuild, "PODMAN=podman "+strings.Join(podman, " ")), "image.sh", "v0.0.0-image", tag)
	t.Cleanup(func() { exec.Command("podman", append(podman, "rmi", "-f", tag)...).Run() })

	var config struct {
		User         string
		Env          []string
		Entrypoint   []string
		Cmd          []string
		WorkingDir   string
		ExposedPorts map[string]any
		Volumes      map[string]any
		Labels       map[string]string
	}
	if err := json.Unmarshal([]byte(run("image", "inspect", "--format", "{{json .Config}}", tag)), &config); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title": "allot", "org.opencontainers.image.version": "v0.0.0-image",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567", "org.opencontainers.image.created": "2025-12-01T22:00:00Z",
		"org.opencontainers.image.licenses": "Apache-2.0", "org.opencontainers.image.source": "https://github.com/allot-dev/allot",
	} {
		if config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, config.Labels[k], v)
		}
	}
	env := strings.Join(config.Env, " ")
	if config.User != "65532:65532" || !strings.Contains(env, "ALLOT_LISTEN=0.0.0.0:8080") || !strings.Contains(env, "ALLOT_DATA=/data") ||
		strings.Join(config.Entrypoint, " ") != "/usr/local/bin/allot" || strings.Join(config.Cmd, " ") != "serve" ||
		config.ExposedPorts["8080/tcp"] == nil || config.Volumes["/data"] == nil {
		t.Errorf("image config: %+v", config)
	}

	id := run("create", tag)
	t.Cleanup(func() { exec.Command("podman", append(podman, "rm", "-f", id)...).Run() })
	export := filepath.Join(tmp, "rootfs.tar")
	run("export", "--output", export, id)
	root := filepath.Join(tmp, "rootfs")
	files := untar(t, export, root)
	hostCerts, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); len(b) == 0 || string(b) != string(hostCerts) {
		t.Error("the image's CA certificates are missing or not the host's")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); !strings.Contains(string(b), "allot:x:65532:65532:") {
		t.Errorf("etc/passwd has no allot user:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/group")); !strings.Contains(string(b), "allot:x:65532:") {
		t.Errorf("etc/group has no allot group:\n%s", b)
	}
	if h := files["data"]; h == nil || h.Typeflag != tar.TypeDir || h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("/data is not a directory of the allot user: %+v", h)
	}
	if h := files["usr/local/bin/allot"]; h == nil || h.Mode&0o111 == 0 {
		t.Fatalf("no executable /usr/local/bin/allot: %+v", h)
	}
	for _, name := range []string{"usr/share/doc/allot/LICENSE", "usr/share/doc/allot/README.md"} {
		if files[name] == nil {
			t.Errorf("no /%s", name)
		}
	}

	// The exported binary serves.
	bin := filepath.Join(root, "usr/local/bin/allot")
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "allot v0.0.0-image\n") {
		t.Errorf("allot version: %v\n%s", err, out)
	}
	serve := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "ALLOT_DATA="+filepath.Join(tmp, "data"), "ALLOT_ADMIN_TOKEN=image-test-admin-token")
	stderr, _ := serve.StderrPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "allot: serving region local on "); ok {
				urls <- url
			}
		}
	}()
	select {
	case url := <-urls:
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			t.Errorf("/healthz: %s %q", resp.Status, b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the exported binary did not start")
	}
}

// untar extracts the regular files and directories of a tarball into dir
// and returns its headers by name.
func untar(t *testing.T, file, dir string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		out[name] = h
		path := filepath.Join(dir, filepath.FromSlash(name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			t.Fatalf("tarball entry %q outside the root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(path), 0o755)
			w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
