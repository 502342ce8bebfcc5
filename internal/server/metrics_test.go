package server

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

func TestLabelsMapToFixedSets(t *testing.T) {
	cases := []struct{ name, got, want string }{
		{"GET", methodLabel("GET"), "GET"},
		{"OPTIONS", methodLabel("OPTIONS"), "OPTIONS"},
		{"lower-case get", methodLabel("get"), "other"},
		{"invented method", methodLabel("INVENTED1"), "other"},
		{"CONNECT", methodLabel("CONNECT"), "other"},
		{"status 200", statusLabel(200), "200"},
		{"status 599", statusLabel(599), "599"},
		{"status 600", statusLabel(600), "other"},
		{"status 99", statusLabel(99), "other"},
		{"known op", opLabel(quota.OpPutConsumer), "put"},
		{"invented op", opLabel("invented"), "other"},
		{"admitted", resultLabel(""), "admitted"},
		{"known code", resultLabel(quota.CodeQuotaExceeded), "quota_exceeded"},
		{"invented code", resultLabel("invented"), "other"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("label %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestRouteLabelsAreCapped(t *testing.T) {
	l := &routeLabels{seen: map[string]bool{}}
	if got := l.label(""); got != "unmatched" {
		t.Errorf("no pattern: %q, want unmatched", got)
	}
	distinct := map[string]bool{}
	for i := range 10 * maxRouteLabels {
		distinct[l.label(fmt.Sprintf("GET /r%d", i))] = true
	}
	if len(distinct) > maxRouteLabels+1 || !distinct["other"] {
		t.Errorf("%d distinct route labels, want at most %d and \"other\"", len(distinct), maxRouteLabels+1)
	}
	if got := l.label("GET /r0"); got != "GET /r0" {
		t.Errorf("a pattern seen before the cap: %q", got)
	}
}

// TestEveryEngineConstantHasItsLabel reads the quota package's source for
// its OpType and Code constants, so a new one is not silently counted as
// "other".
func TestEveryEngineConstantHasItsLabel(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "quota", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				typ, ok := vs.Type.(*ast.Ident)
				if !ok || (typ.Name != "OpType" && typ.Name != "Code") {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					value := lit.Value[1 : len(lit.Value)-1]
					found[typ.Name]++
					got := resultLabel(quota.Code(value))
					if typ.Name == "OpType" {
						got = opLabel(quota.OpType(value))
					}
					if got != value {
						t.Errorf("%s %q is labelled %q", typ.Name, value, got)
					}
				}
			}
		}
	}
	if found["OpType"] == 0 || found["Code"] == 0 {
		t.Fatalf("found %v constants: the parser missed them", found)
	}
}
