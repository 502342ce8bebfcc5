package main_test

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// packageRow is a row of ARCHITECTURE.md's package table: "| `path` | …".
var packageRow = regexp.MustCompile("^\\| `([^`]+)` \\|")

// quotedPath is a backquoted span that names something in the tree.
var quotedPath = regexp.MustCompile("`((?:internal|cmd|client|interop)(?:/[A-Za-z0-9_.-]+)*/?)`")

// TestArchitectureMapsEveryPackage keeps ARCHITECTURE.md true: a directory
// with Go files added without a row in its package table fails, and so do a
// row and a backquoted path that no longer exist.
func TestArchitectureMapsEveryPackage(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	packages := goPackages(t, repoRoot)
	if len(packages) < 10 || !packages["internal/quota"] {
		t.Fatalf("found only %v: is %s the repository?", slices.Sorted(maps.Keys(packages)), repoRoot)
	}
	rows := map[string]bool{}
	for line := range strings.SplitSeq(string(doc), "\n") {
		if m := packageRow.FindStringSubmatch(line); m != nil {
			rows[m[1]] = true
		}
	}
	for _, p := range slices.Sorted(maps.Keys(packages)) {
		if !rows[p] {
			t.Errorf("package %s has no row in ARCHITECTURE.md's package table: add one that says its one job", p)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(rows)) {
		if !packages[r] {
			t.Errorf("ARCHITECTURE.md has a row for %s, which is not a directory with Go files", r)
		}
	}
	for _, m := range quotedPath.FindAllStringSubmatch(string(doc), -1) {
		if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(m[1]))); err != nil {
			t.Errorf("ARCHITECTURE.md names `%s`, which does not exist", m[1])
		}
	}
}

// goPackages returns the directories under root that hold Go files, as
// slash-separated paths relative to root. Hidden directories and testdata
// hold no packages of ours. interop, a module of its own, is included: it
// is part of the tree a newcomer reads.
func goPackages(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
