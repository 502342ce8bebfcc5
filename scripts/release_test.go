package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Building one commit twice gives the same archives. The first build runs
// in the tree; the second from a copy of it in another directory with
// another umask: linux/amd64 with an empty build cache, so everything is
// compiled again, darwin/arm64 with the cache (only the link and the
// archive are made again). Their SHA256SUMS lines must equal the first's.
// Two of the four targets keep it to a few minutes; the script builds all
// four the same way.
func TestReleaseChecksumsAreReproducible(t *testing.T) {
	needs(t, os.Getenv("CI") == "true" || os.Getenv("ALLOT_TEST_RELEASE") == "1",
		"builds allot twice from scratch (a few minutes): runs under CI=true or with ALLOT_TEST_RELEASE=1")
	_, err := exec.LookPath("git")
	needs(t, err == nil, "git is not installed")
	first := t.TempDir()
	script(t, repoRoot, append(fixedBuild, "TARGETS=linux/amd64 darwin/arm64", "OUT="+first), "release.sh", "v0.0.0-repro")

	// The same tree elsewhere: the tracked and new files as they are now.
	src := filepath.Join(t.TempDir(), "elsewhere", "allot")
	files, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fresh, warm, cache := t.TempDir(), t.TempDir(), t.TempDir()
	script(t, src, append(fixedBuild, "TARGETS=linux/amd64", "OUT="+fresh, "GOCACHE="+cache, "UMASK=077"), "release.sh", "v0.0.0-repro")
	// Go's cache keeps its files read-only; make them removable.
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error { os.Chmod(p, 0o755); return nil })
	script(t, src, append(fixedBuild, "TARGETS=darwin/arm64", "OUT="+warm, "UMASK=077"), "release.sh", "v0.0.0-repro")

	a, err := os.ReadFile(filepath.Join(first, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, dir := range []string{fresh, warm} {
		sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, sums...)
	}
	if string(a) != string(b) || strings.Count(string(a), "\n") != 2 {
		t.Fatalf("two builds of one commit differ:\nfirst:\n%s\nsecond:\n%s", a, b)
	}
	for _, name := range []string{"allot_v0.0.0-repro_linux_amd64.tar.gz", "allot_v0.0.0-repro_darwin_arm64.tar.gz"} {
		if !strings.Contains(string(a), "  "+name+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", name, a)
		}
		list, err := exec.Command("tar", "-tzvf", filepath.Join(first, name)).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"allot_v0.0.0-repro_" + strings.Split(name, "_")[2] + "_", "/allot\n", "/LICENSE\n", "/README.md\n", " 0/0 "} {
			if !strings.Contains(string(list), want) {
				t.Errorf("%s lacks %q:\n%s", name, want, list)
			}
		}
	}
}
