package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for the caller's *testing.T so the tests can see whether
// assert failed it, and how.
type recorder struct {
	testing.TB
	fatal, errored bool
	msg            string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal, r.msg = true, fmt.Sprintf(format, args...)
}
func (r *recorder) Errorf(format string, args ...any) {
	r.errored, r.msg = true, fmt.Sprintf(format, args...)
}

func TestAssert(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.golden")
	if err := os.WriteFile(existing, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A regular file where a directory should be: no one, not even root,
	// can create a file under it.
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		path           string
		got            string
		update         bool
		fatal, errored bool
		after          string // the file's content afterwards; "" for none
		msgHas         string // the failure must say this
	}{
		{name: "same", path: existing, got: "old\n", after: "old\n"},
		{name: "differs", path: existing, got: "new\n", errored: true, after: "old\n"},
		{name: "missing", path: filepath.Join(dir, "missing.golden"), got: "x", fatal: true},
		{name: "update rewrites", path: filepath.Join(dir, "sub", "new.golden"), got: "fresh\n", update: true, after: "fresh\n"},
		{name: "update that cannot write fails", path: filepath.Join(blocker, "x.golden"), got: "fresh\n", update: true, fatal: true, msgHas: "create directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			assert(r, tc.path, []byte(tc.got), tc.update)
			if r.fatal != tc.fatal || r.errored != tc.errored {
				t.Fatalf("fatal=%v errored=%v (%q), want fatal=%v errored=%v", r.fatal, r.errored, r.msg, tc.fatal, tc.errored)
			}
			if !strings.Contains(r.msg, tc.msgHas) {
				t.Fatalf("failure %q does not say %q", r.msg, tc.msgHas)
			}
			if tc.after == "" {
				return
			}
			b, err := os.ReadFile(tc.path)
			if err != nil || string(b) != tc.after {
				t.Fatalf("file now %q %v, want %q", b, err, tc.after)
			}
		})
	}
}

func TestAssertJSONIndents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.golden")
	want := "{\n  \"a\": [\n    1\n  ]\n}\n"
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"a":[1]}`, "{\"a\":[1]}\n", "{\"a\":[1]}\n\n"} {
		r := &recorder{TB: t}
		AssertJSON(r, path, []byte(body))
		if r.fatal || r.errored {
			t.Errorf("%q: %s", body, r.msg)
		}
	}
	r := &recorder{TB: t}
	AssertJSON(r, path, []byte("not json"))
	if !r.fatal {
		t.Error("not JSON passed")
	}
}
