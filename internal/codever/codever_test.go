package codever

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The committed table must match the code: a package whose code changed needs its
// version bumped, which the generator does.
func TestVersionsCurrent(t *testing.T) {
	tab, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	now, err := Scan(moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, changes := tab.Update(now); len(changes) > 0 {
		t.Errorf("%s is out of date:\n\t%s\nfix: run `go run ./internal/codever/gen` from the module root, and commit %s",
			TableFile, strings.Join(changes, "\n\t"), TableFile)
	}
}

// Every literal package name passed to codever.Of or codever.Lookup anywhere in the
// module is in the table (Of does not fail on unknown names; this test does).
func TestCodeverNamesExist(t *testing.T) {
	tab, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // not ours to report
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Of" && sel.Sel.Name != "Lookup") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "codever" {
				return true
			}
			for _, a := range call.Args {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				name, _ := strconv.Unquote(lit.Value)
				if _, ok := tab.Package(name); !ok {
					t.Errorf("%s: codever.%s(%q): no such package in %s", fset.Position(lit.Pos()), sel.Sel.Name, name, TableFile)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeModule writes files (slash paths -> content) as a module "example.com/m" in a
// temp folder and returns it.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.26\n"
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func scanPkg(t *testing.T, dir, pkg string) Package {
	t.Helper()
	tab, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tab.Package(pkg)
	if !ok {
		t.Fatalf("package %s not found in %v", pkg, tab.Packages())
	}
	return p
}

const baseSrc = `// Package a is a test.
package a

import (
	"strings"
	"example.com/m/b"
)

//go:embed data.txt
var data string

// F does things.
func F(xs []string) string {
	s := strings.Join(xs, ",") // inline comment
	return s + b.B
}

var table = []int{1, 2, 3}
`

// Comments, blank lines, gofmt and import order do not change a package's hash; code,
// directives and embedded files do.
func TestHashSeesCodeNotComments(t *testing.T) {
	base := map[string]string{"a/a.go": baseSrc, "a/data.txt": "one", "a/a_test.go": "package a\n", "b/b.go": "package b\n\nconst B = \"b\"\n"}
	hashOf := func(edit func(src string) string, data string) string {
		files := map[string]string{}
		for k, v := range base {
			files[k] = v
		}
		files["a/a.go"] = edit(baseSrc)
		files["a/data.txt"] = data
		return scanPkg(t, writeModule(t, files), "a").Hash
	}
	same := func(s string) string { return s }
	h0 := hashOf(same, "one")
	if got := scanPkg(t, writeModule(t, map[string]string{"a/a.go": baseSrc, "a/data.txt": "one", "b/b.go": base["b/b.go"]}), "a"); got.Hash != h0 || strings.Join(got.Imports, ",") != "b" {
		t.Errorf("a test file changed the hash, or imports are %v (want [b])", got.Imports)
	}
	for name, edit := range map[string]func(string) string{
		"comments": func(s string) string {
			s = strings.ReplaceAll(s, "// F does things.", "// F does many things,\n// and more.")
			s = strings.ReplaceAll(s, "// inline comment", "/* other */")
			return strings.ReplaceAll(s, "return s", "// a new line\n\n\treturn s")
		},
		"layout": func(s string) string {
			s = strings.ReplaceAll(s, "[]int{1, 2, 3}", "[]int{\n1,\n2,\n3,\n}")
			return strings.ReplaceAll(s, "func F(xs []string) string {", "func F(xs []string) string {\n\n")
		},
		"gofmt": func(s string) string {
			b, err := format.Source([]byte(strings.ReplaceAll(s, "\t", "  ")))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		},
		"import order": func(s string) string {
			return strings.Replace(s, "\"strings\"\n\t\"example.com/m/b\"", "\"example.com/m/b\"\n\t\"strings\"", 1)
		},
	} {
		if edit(baseSrc) == baseSrc {
			t.Fatalf("%s: edit did nothing", name)
		}
		if h := hashOf(edit, "one"); h != h0 {
			t.Errorf("%s changed the hash", name)
		}
	}
	for name, edit := range map[string]func(string) string{
		"a constant":     func(s string) string { return strings.Replace(s, "2, 3", "2, 4", 1) },
		"a statement":    func(s string) string { return strings.Replace(s, `","`, `";"`, 1) },
		"a directive":    func(s string) string { return "//go:build linux\n\n" + s },
		"an import name": func(s string) string { return strings.Replace(s, `"strings"`, `str "strings"`, 1) },
	} {
		if h := hashOf(edit, "one"); h == h0 {
			t.Errorf("changing %s did not change the hash", name)
		}
	}
	if h := hashOf(same, "two"); h == h0 {
		t.Error("changing an embedded file did not change the hash")
	}
}

// Stripping every comment of a real package (a temp copy) and reformatting it keeps its hash.
func TestHashIgnoresCommentsOfRealPackage(t *testing.T) {
	src := filepath.Join(moduleRoot(t), "internal", "atomicfile")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	orig, stripped := map[string]string{}, map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, e.Name(), b, 0) // no comments
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := format.Node(&buf, fset, f); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(buf.Bytes(), b) {
			t.Fatalf("%s has no comments to strip", e.Name())
		}
		orig["p/"+e.Name()] = string(b)
		stripped["p/"+e.Name()] = buf.String()
	}
	if a, b := scanPkg(t, writeModule(t, orig), "p"), scanPkg(t, writeModule(t, stripped), "p"); a.Hash != b.Hash {
		t.Errorf("stripping comments changed the hash of a copy of internal/atomicfile: %s → %s", a.Hash, b.Hash)
	}
}

// Of/Lookup follow recorded imports: a dependency's new version changes the digest of
// every package that depends on it, and only those.
func TestLookupFollowsDependencies(t *testing.T) {
	table := func(cVersion int) *Table {
		return NewTable("example.com/m",
			Package{Path: "a", Version: 1, Hash: "x", Imports: []string{"b"}},
			Package{Path: "b", Version: 3, Hash: "x", Imports: []string{"c"}},
			Package{Path: "c", Version: cVersion, Hash: "x"},
			Package{Path: "d", Version: 1, Hash: "x"},
		)
	}
	lookup := func(tab *Table, pkgs ...string) string {
		t.Helper()
		d, err := tab.Lookup(pkgs...)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t1, t2 := table(1), table(2)
	if lookup(t1, "a") == lookup(t2, "a") {
		t.Error("a version bump of c (imported by b, imported by a) did not change Lookup(a)")
	}
	if lookup(t1, "d") != lookup(t2, "d") {
		t.Error("a version bump of c changed Lookup(d), which does not depend on it")
	}
	if lookup(t1, "a", "d") != lookup(t1, "d", "example.com/m/a", "a") {
		t.Error("Lookup depends on order, repetition or spelling of names")
	}
	if lookup(t1, "a") != lookup(t1, "a", "c") {
		t.Error("naming a dependency again changed Lookup")
	}
	if d := lookup(t1); d != "" {
		t.Errorf("Lookup() = %q, want \"\"", d)
	}
	d1, err := t1.Lookup("a", "nope")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown package: err %v", err)
	}
	if d2, _ := t1.Lookup("nope", "a"); d1 != d2 || d1 == "" || d1 == lookup(t1, "a") {
		t.Errorf("unknown package: digests %q %q, want deterministic and distinct", d1, d2)
	}
}

func TestUpdateBumpsChangedPackages(t *testing.T) {
	old := NewTable("m",
		Package{Path: "a", Version: 4, Hash: "h1"},
		Package{Path: "b", Version: 2, Hash: "h2", Imports: []string{"a"}},
		Package{Path: "gone", Version: 1, Hash: "h3"},
	)
	now := NewTable("m",
		Package{Path: "a", Hash: "h1"},
		Package{Path: "b", Hash: "h2x", Imports: []string{"a"}},
		Package{Path: "new", Hash: "h4"},
	)
	next, changes := old.Update(now)
	want := map[string]int{"a": 4, "b": 3, "new": 1}
	for _, p := range next.Packages() {
		if want[p.Path] != p.Version {
			t.Errorf("%s: version %d, want %d", p.Path, p.Version, want[p.Path])
		}
	}
	if len(next.Packages()) != 3 || len(changes) != 3 {
		t.Errorf("packages %v, changes %q", next.Packages(), changes)
	}
	if _, again := next.Update(now); len(again) != 0 {
		t.Errorf("updating an updated table: %q", again)
	}
	back, err := Parse(next.Format())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Format(), next.Format()) || back.Module != "m" {
		t.Errorf("Format/Parse round trip:\n%s\n%s", next.Format(), back.Format())
	}
}

func TestParseRejectsBadLines(t *testing.T) {
	for _, s := range []string{"a x h\n", "a 0 h\n", "a 1\n", "a 1 h\na 2 h\n"} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%q): no error", s)
		}
	}
}
