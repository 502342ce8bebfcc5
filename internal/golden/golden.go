// Package golden compares test output with files under testdata and rewrites
// those files when the test binary runs with -update. It is test support:
// only _test.go files import it.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// update is registered here, once, so that every test binary that imports
// this package gets the same -update flag and no test file declares its own
// (a second registration of a flag name panics).
var update = flag.Bool("update", false, "rewrite the golden files instead of comparing with them")

// Assert fails t unless got equals the file at path. With -update it writes
// got to path first, and fails t if it cannot: a golden file that was not
// rewritten must not pass as if it had been.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	assert(t, path, got, *update)
}

// AssertJSON is Assert for a JSON document: got is indented by two spaces and
// ends with exactly one newline, so the file reads well and diffs by line.
func AssertJSON(t testing.TB, path string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("golden %s: not JSON: %v\n%s", path, err, got)
		return
	}
	assert(t, path, append(bytes.TrimRight(pretty.Bytes(), " \t\r\n"), '\n'), *update)
}

func assert(t testing.TB, path string, got []byte, rewrite bool) {
	t.Helper()
	if rewrite {
		if err := write(path, got); err != nil {
			t.Fatalf("golden: %v", err)
			return
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run the test with -update to create it)", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden %s differs (run the test with -update to accept the new output):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
