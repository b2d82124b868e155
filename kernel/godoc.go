package kernel

import (
	"context"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Documentation for inspect comes from the packages' sources when they are on this
// machine: GOROOT for the standard library, the module cache for modules. A kernel
// binary copied elsewhere simply shows signatures only.

var docCache sync.Map // import path -> *doc.Package (nil when unavailable)

// packageDoc is the doc comment of name in the package at path ("" for the package).
func packageDoc(path, name string) string {
	p := loadDoc(path)
	if p == nil {
		return ""
	}
	if name == "" {
		return strings.TrimSpace(p.Doc)
	}
	for _, f := range p.Funcs {
		if f.Name == name {
			return strings.TrimSpace(f.Doc)
		}
	}
	for _, t := range p.Types {
		if t.Name == name {
			return strings.TrimSpace(t.Doc)
		}
		for _, f := range t.Funcs {
			if f.Name == name {
				return strings.TrimSpace(f.Doc)
			}
		}
		for _, vs := range [][]*doc.Value{t.Consts, t.Vars} {
			if d := valueDoc(vs, name); d != "" {
				return d
			}
		}
	}
	for _, vs := range [][]*doc.Value{p.Consts, p.Vars} {
		if d := valueDoc(vs, name); d != "" {
			return d
		}
	}
	return ""
}

func valueDoc(vs []*doc.Value, name string) string {
	for _, v := range vs {
		for _, n := range v.Names {
			if n == name {
				return strings.TrimSpace(v.Doc)
			}
		}
	}
	return ""
}

func loadDoc(path string) *doc.Package {
	if p, ok := docCache.Load(path); ok {
		return p.(*doc.Package)
	}
	var pkg *doc.Package
	if dir := sourceDir(path); dir != "" {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments)
		if err == nil {
			for name, astPkg := range pkgs {
				if name == "main" || strings.HasSuffix(name, "_test") {
					continue
				}
				var files []*ast.File
				for _, f := range astPkg.Files {
					files = append(files, f)
				}
				if p, err := doc.NewFromFiles(fset, files, path); err == nil && (pkg == nil || name == filepath.Base(path)) {
					pkg = p
				}
			}
		}
	}
	docCache.Store(path, pkg)
	return pkg
}

// sourceDir finds the directory holding a package's source, or "".
func sourceDir(path string) (dir string) {
	if !strings.Contains(strings.Split(path, "/")[0], ".") {
		dir := filepath.Join(runtime.GOROOT(), "src", path)
		if isDir(dir) {
			return dir
		}
		return ""
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "pkg", "mod")
	}
	defer func() {
		if dir == "" {
			dir = goListDir(path)
		}
	}()
	for _, m := range info.Deps {
		if path == m.Path || strings.HasPrefix(path, m.Path+"/") {
			if m.Replace != nil {
				m = m.Replace
			}
			escaped := escapeModulePath(m.Path)
			if d := filepath.Join(cache, escaped+"@"+m.Version, strings.TrimPrefix(path, m.Path)); isDir(d) {
				return d
			}
		}
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding ("A" -> "!a").
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// goListDir asks the go tool (when there is one) where a package is: this finds
// dpsflow's own packages when the kernel runs inside its module.
func goListDir(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
