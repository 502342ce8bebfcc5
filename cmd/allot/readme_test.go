package main_test

// The README runs as written. TestREADME takes every shell block of
// README.md, in order, and runs it with bash against a fresh allot serve
// in a fresh directory; every block must succeed.
//
// Which blocks run: a fenced block whose info string is exactly "sh". A
// block that is only illustrative (starting allot in the foreground,
// following a stream forever, a PostgreSQL on another machine) is fenced
// "sh skip" and is not run; any other word after "sh" is a mistake and
// fails the test. Blocks fenced otherwise (text, json, yaml, go) are
// never run.
//
// What the test provides, as a reader would have it:
//   - allot serve, started in the fresh directory as the README starts it
//     (its data in ./allot-data), but on a free port; its address is in
//     ALLOT_SERVER and the admin token it was started with in
//     ALLOT_ADMIN_TOKEN, which is how the README's first block finds them;
//   - the allot binary on PATH (go install ./cmd/allot);
//   - curl, through a wrapper that fails on an HTTP error status, so that
//     a request the README expects to succeed cannot quietly answer 404
//     (unless the command prints the status itself, with -w '%{http_code}');
//   - bash in strict mode (set -euo pipefail), each block in its own
//     process; the variables a block sets reach the blocks after it.
//
// It needs bash, curl and jq; without them it skips (under CI=true it
// fails).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced shell block of the README.
type readmeBlock struct {
	line   int // of the opening fence
	source string
	skip   bool
}

// readmeBlocks returns the shell blocks of a Markdown document, in order.
func readmeBlocks(t *testing.T, doc []byte) []readmeBlock {
	t.Helper()
	var out []readmeBlock
	var cur *readmeBlock
	var body strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(line, "```")
		switch {
		case cur != nil && fence:
			cur.source = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		case fence && cur == nil:
			info := strings.Fields(strings.TrimPrefix(line, "```"))
			if len(info) == 0 || info[0] != "sh" {
				// Another language, or plain: skip to its closing fence.
				for sc.Scan() {
					n++
					if strings.HasPrefix(sc.Text(), "```") {
						break
					}
				}
				continue
			}
			b := readmeBlock{line: n}
			switch {
			case len(info) == 1:
			case len(info) == 2 && info[1] == "skip":
				b.skip = true
			default:
				t.Fatalf("README.md:%d: a shell block is fenced %q; it must be \"sh\" (run) or \"sh skip\" (illustrative)", n, line)
			}
			cur = &b
			body.Reset()
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: the block is never closed", cur.line)
	}
	return out
}

func TestREADME(t *testing.T) {
	var tools = map[string]string{}
	for _, tool := range []string{"bash", "curl", "jq"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			msg := fmt.Sprintf("the README test needs %s on PATH", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		tools[tool] = p
	}
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, doc)
	run := 0
	for _, b := range blocks {
		if !b.skip {
			run++
		}
	}
	if run < 5 {
		t.Fatalf("the README has %d shell blocks to run; its examples are fenced \"sh\"", run)
	}

	// The reader's machine: a fresh directory, allot and curl on PATH.
	dir, home, bin, state := t.TempDir(), t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "env")
	if err := os.Symlink(binary, filepath.Join(bin, "allot")); err != nil {
		t.Fatal(err)
	}
	curl := "#!/bin/sh\n# curl that fails on an HTTP error, unless the caller prints the status itself\n" +
		"case \"$*\" in *http_code*) exec " + tools["curl"] + " \"$@\";; esac\n" +
		"exec " + tools["curl"] + " --fail-with-body \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(curl), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ALLOT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ALLOT_ADMIN_TOKEN="+hex.EncodeToString(secret))
	url, logs := startIn(t, dir, env)
	env = append(env, "ALLOT_SERVER="+url)

	for _, b := range blocks {
		where := fmt.Sprintf("README.md:%d", b.line)
		if b.skip {
			t.Logf("%s: skipped (sh skip)", where)
			continue
		}
		script := "set -a\n[ -f " + state + " ] && . " + state + "\nset -euo pipefail\n" + b.source +
			"\nset +a\nexport -p > " + state + "\n"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, tools["bash"], "--noprofile", "--norc", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s failed (%v):\n%s\n--- its output:\n%s\n--- allot serve's log:\n%s", where, err, b.source, out, logs.String())
		}
		t.Logf("%s:\n%s", where, out)
	}
}

// startIn runs allot serve in dir, as the README starts it but on a free
// port, and returns its URL and its log.
func startIn(t *testing.T, dir string, env []string) (string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0")
	cmd.Dir, cmd.Env = dir, env
	logs := &syncBuffer{}
	cmd.Stdout = logs
	// The start-up lines, the URL among them, are on stderr.
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			if _, u, ok := strings.Cut(sc.Text(), " on http://"); ok {
				select {
				case urls <- "http://" + strings.Fields(u)[0]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-urls:
		return u, logs
	case <-time.After(20 * time.Second):
		t.Fatalf("allot serve did not start:\n%s", logs.String())
	}
	return "", nil
}
