package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real program, as an operator would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "allot-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "allot")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building allot: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminToken = "e2e-admin-token"

type proc struct {
	cmd *exec.Cmd
	url string
	// stderr is what it wrote there: the start-up lines (the admin token,
	// where it serves) and the log.
	stderr *syncBuffer
}

// syncBuffer is a buffer one goroutine fills while a test reads it.
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

// start runs `allot serve` on a free port with data in dir and waits until
// it listens.
func start(t *testing.T, dir string, env ...string) *proc {
	t.Helper()
	return startBinary(t, binary, dir, env...)
}

// startBinary is start with another build of allot.
func startBinary(t *testing.T, bin, dir string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", dir)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &syncBuffer{}}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("allot stderr:\n%s", p.stderr.String())
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			if _, url, ok := strings.Cut(line, "allot: serving region "); ok {
				if _, url, ok = strings.Cut(url, " on "); ok {
					urls <- url
				}
			}
		}
	}()
	select {
	case p.url = <-urls:
	case <-time.After(20 * time.Second):
		t.Fatalf("allot did not start:\n%s", p.stderr.String())
	}
	return p
}

// printedToken is the admin token a first start printed, or "".
func printedToken(out string) string {
	_, after, ok := strings.Cut(out, "shown only this once:\n")
	if !ok {
		return ""
	}
	for line := range strings.Lines(after) {
		if s := strings.TrimSpace(line); s != "" {
			return s
		}
	}
	return ""
}

func (p *proc) req(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestFirstStartPrintsAnAdminTokenOnce(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	token := printedToken(p.stderr.String())
	if token == "" {
		t.Fatalf("no admin token printed:\n%s", p.stderr)
	}
	if strings.Contains(logLines(p.stderr.String()), token) {
		t.Fatalf("the admin token is in the log:\n%s", p.stderr)
	}
	if code, body := p.req(t, "GET", "/api/v1/tenants", token, ""); code != 200 {
		t.Fatalf("printed token does not work: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	again := start(t, dir)
	if strings.Contains(again.stderr.String(), "shown only this once") {
		t.Fatal("a second start printed another admin token")
	}
	if code, _ := again.req(t, "GET", "/api/v1/tenants", token, ""); code != 200 {
		t.Fatal("the first token stopped working after a restart")
	}
}

// TestAnsweredClaimsSurviveSIGKILL kills allot while claims are racing and
// checks that every claim answered as admitted is there after a restart.
func TestAnsweredClaimsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	env := "ALLOT_ADMIN_TOKEN=" + adminToken
	p := start(t, dir, env)
	if code, body := p.req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"t1"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	p.req(t, "PUT", "/api/v1/tenants/t1/quotas/compute.instances", adminToken, `{"hard":100000}`)

	var mu sync.Mutex
	var admitted []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				req, _ := http.NewRequest("PUT", p.url+"/api/v1/tenants/t1/consumers/"+id,
					strings.NewReader(`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					admitted = append(admitted, id)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	p.cmd.Process.Kill()
	p.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(admitted) == 0 {
		t.Fatal("no claim was admitted before the kill")
	}

	again := start(t, dir, env)
	for _, id := range admitted {
		if code, body := again.req(t, "GET", "/api/v1/tenants/t1/consumers/"+id, adminToken, ""); code != 200 {
			t.Fatalf("admitted consumer %s lost after SIGKILL: %d %s", id, code, body)
		}
	}
	// Usage equals the sum of the footprints of what exists.
	st := readState(t, again, []string{"t1"}, true)
	total := len(st.consumers["t1"])
	if used := st.usage["t1"]["compute.instances"]; used != int64(total) || !maps.Equal(nonZero(st.usage["t1"]), nonZero(st.footprint["t1"])) {
		t.Fatalf("instances used %d, but %d consumers exist; usage %v, footprints %v", used, total, st.usage["t1"], st.footprint["t1"])
	}
	t.Logf("%d admitted claims checked after SIGKILL; %d consumers exist", len(admitted), total)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--no-such-flag").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2\n%s", err, out)
	}
	// One line naming the flag and a pointer to --help, not the whole usage.
	if !strings.Contains(string(out), "unknown flag `--no-such-flag`") || !strings.Contains(string(out), "allot serve --help") ||
		strings.Contains(string(out), "Usage:") {
		t.Fatalf("output:\n%s", out)
	}
}

// logLines is the log's part of what allot wrote on stderr: its lines
// that are not start-up lines.
func logLines(out string) string {
	var b strings.Builder
	inToken := false
	for line := range strings.Lines(out) {
		switch {
		case strings.HasPrefix(line, "allot: created an admin token"):
			inToken = true
		case inToken && (strings.TrimSpace(line) == "" || strings.HasPrefix(line, "    ")):
		case strings.HasPrefix(line, "allot: "):
			inToken = false
		default:
			inToken = false
			b.WriteString(line)
		}
	}
	return b.String()
}

// runFor runs cmd to its end, killing it after d, and returns its output.
func runFor(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// TestASecondServeOnOneDataDirectoryIsRefused: one process owns a SQLite
// database; a second refuses at once, names the holder, and changes
// nothing in the directory.
func TestASecondServeOnOneDataDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir, "ALLOT_ADMIN_TOKEN="+adminToken)
	before := snapshotDir(t, dir)
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", dir)
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN="+adminToken)
	out, err := runFor(cmd, 20*time.Second)
	if err == nil {
		t.Fatalf("a second allot served the same data directory:\n%s", out)
	}
	if want := fmt.Sprintf("in use by another allot (pid %d)", first.cmd.Process.Pid); !strings.Contains(out, want) {
		t.Fatalf("the refusal does not name the holder (%q):\n%s", want, out)
	}
	if after := snapshotDir(t, dir); !maps.Equal(before, after) {
		t.Fatalf("the refused start changed the directory:\n before %v\n after  %v", before, after)
	}
	if code, _ := first.req(t, "GET", "/api/v1/tenants", adminToken, ""); code != 200 {
		t.Fatalf("the first process stopped serving: %d", code)
	}
}

// snapshotDir maps each file of dir to its size and modification time.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%d %s", info.Size(), info.ModTime())
	}
	return out
}
