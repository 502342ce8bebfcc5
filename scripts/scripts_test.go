// Package scripts_test tests the release scripts: reproducible archives
// (release.sh) and the content of the container image (image.sh).
package scripts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const repoRoot = ".."

// fixedBuild is the commit and its time both builds of a test are given,
// so they do not depend on the state of the checkout.
var fixedBuild = []string{"ALLOT_COMMIT=0123456789abcdef0123456789abcdef01234567", "SOURCE_DATE_EPOCH=1764626400"}

// script runs a script of this directory from dir (a copy of the tree, or
// the tree) with env added, and fails the test if it fails.
func script(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	// UMASK in env runs the script under that umask.
	umask := "022"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "UMASK="); ok {
			umask = v
		}
	}
	cmd := exec.Command("bash", append([]string{"-c", `umask "$0" && exec bash "$@"`, umask, filepath.Join("scripts", name)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Second))
	return out.String()
}

// needs skips a test that needs what is missing, except under CI=true,
// where .ci/run installs it and its absence is a failure.
func needs(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run should have provided it)", what)
	}
	t.Skip(what)
}
