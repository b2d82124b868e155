package codever

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ModuleRoot returns the nearest folder at or above dir that holds a go.mod.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("codever: no go.mod at or above %s", dir)
		}
	}
}

// Scan computes the hash and in-module imports of every package of the module rooted at
// root (the folder of go.mod), skipping testdata, vendor, folders whose names start with
// "." or "_", and nested modules. Versions are left 0: see Table.Update.
func Scan(root string) (*Table, error) {
	module, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	t := NewTable(module)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if p != root {
			name := d.Name()
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		pkg, ok, err := scanDir(root, filepath.ToSlash(rel), module)
		if ok {
			t.pkgs[pkg.Path] = pkg
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			if m, err := strconv.Unquote(f[1]); err == nil {
				return m, nil
			}
			return f[1], nil
		}
	}
	return "", fmt.Errorf("codever: %s has no module line", gomod)
}

// scanDir hashes the package in root/rel; ok is false when the folder has no non-test
// .go file. All files count whatever their build constraints, so that the hash is the
// same on every platform.
func scanDir(root, rel, module string) (pkg Package, ok bool, err error) {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return pkg, false, err
	}
	h := sha256.New()
	imports, embeds := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
			strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return pkg, false, err
		}
		imps, pats, err := hashGoFile(h, name, src)
		if err != nil {
			return pkg, false, fmt.Errorf("codever: %s: %w", path.Join(rel, name), err)
		}
		ok = true
		for _, imp := range imps {
			if imp == module {
				imp = "."
			} else if r, in := strings.CutPrefix(imp, module+"/"); in {
				imp = r
			} else {
				continue
			}
			if imp != rel {
				imports[imp] = true
			}
		}
		for _, pat := range pats {
			files, err := embedFiles(dir, pat)
			if err != nil {
				return pkg, false, fmt.Errorf("codever: %s: //go:embed %s: %w", path.Join(rel, name), pat, err)
			}
			for _, f := range files {
				embeds[f] = true
			}
		}
	}
	if !ok {
		return pkg, false, nil
	}
	for _, f := range sortedSet(embeds) {
		if path.Join(rel, f) == TableFile { // the table cannot hash itself
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return pkg, false, err
		}
		fmt.Fprintf(h, "embed %q %s\n", f, sum)
	}
	pkg = Package{Path: rel, Hash: hex.EncodeToString(h.Sum(nil))[:16], Imports: sortedSet(imports)}
	return pkg, true, nil
}

// hashGoFile writes to h what of a Go file is code: its name, package clause, sorted
// import specs, //go: directives but //go:generate, and the tokens after the imports, without comments or
// layout. It returns the import paths and the //go:embed patterns.
func hashGoFile(h io.Writer, name string, src []byte) (imports, embeds []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(h, "file %q\npackage %s\n", name, f.Name.Name)
	var specs []string
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			return nil, nil, err
		}
		imports = append(imports, p)
		n := ""
		if s.Name != nil {
			n = s.Name.Name
		}
		specs = append(specs, n+" "+strconv.Quote(p))
	}
	sort.Strings(specs)
	for _, s := range specs {
		fmt.Fprintf(h, "import %s\n", s)
	}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			// Directives such as //go:build and //go:embed are code; //go:generate is not
			// part of the build. (cgo preambles would be missed: the module has no cgo.)
			if !strings.HasPrefix(c.Text, "//go:") || strings.HasPrefix(c.Text, "//go:generate") {
				continue
			}
			fmt.Fprintf(h, "directive %q\n", c.Text)
			if args, ok := strings.CutPrefix(c.Text, "//go:embed"); ok && (args == "" || args[0] == ' ' || args[0] == '\t') {
				pats, err := embedPatterns(args)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %w", fset.Position(c.Pos()), err)
				}
				embeds = append(embeds, pats...)
			}
		}
	}
	start := fset.Position(f.Name.End()).Offset
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			start = fset.Position(g.End()).Offset
		}
	}
	writeTokens(h, src[start:])
	return imports, embeds, nil
}

// writeTokens writes the tokens of src, comments dropped, with every semicolon spelled
// ";" and without the optional separator before a closing bracket (the newline-inserted
// semicolon before "}" or ")", the trailing comma of a list), so that layout does not count.
func writeTokens(h io.Writer, src []byte) {
	type tl struct {
		tok token.Token
		lit string
	}
	var toks []tl
	var s scanner.Scanner
	s.Init(token.NewFileSet().AddFile("", -1, len(src)), src, nil, 0)
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON {
			lit = ";"
		}
		toks = append(toks, tl{tok, lit})
	}
	w := bufio.NewWriter(h)
	for i, t := range toks {
		if (t.tok == token.SEMICOLON || t.tok == token.COMMA) && i+1 < len(toks) {
			switch toks[i+1].tok {
			case token.RPAREN, token.RBRACE, token.RBRACK:
				continue
			}
		}
		// token names (not numbers) so that the hash does not depend on the Go version.
		fmt.Fprintf(w, "%s %d:%s\n", t.tok, len(t.lit), t.lit)
	}
	w.Flush()
}

// embedPatterns splits the arguments of a //go:embed directive (quoted or not).
func embedPatterns(args string) ([]string, error) {
	var out []string
	for args = strings.TrimSpace(args); args != ""; args = strings.TrimSpace(args) {
		if args[0] == '"' || args[0] == '`' {
			q, err := strconv.QuotedPrefix(args)
			if err != nil {
				return nil, fmt.Errorf("bad quoted pattern in %s", args)
			}
			p, _ := strconv.Unquote(q)
			out = append(out, p)
			args = args[len(q):]
			continue
		}
		i := strings.IndexAny(args, " \t")
		if i < 0 {
			i = len(args)
		}
		out = append(out, args[:i])
		args = args[i:]
	}
	if len(out) == 0 {
		return nil, errors.New("//go:embed without patterns")
	}
	return out, nil
}

// embedFiles lists the files (slash paths relative to dir) that a //go:embed pattern
// embeds, following the go command's rules: folders are walked, and files in them whose
// names start with "." or "_" are left out unless the pattern starts with "all:".
func embedFiles(dir, pat string) ([]string, error) {
	all := strings.HasPrefix(pat, "all:")
	pat = strings.TrimPrefix(pat, "all:")
	fsys := os.DirFS(dir)
	matches, err := fs.Glob(fsys, pat)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, errors.New("pattern matches no files")
	}
	var out []string
	for _, m := range matches {
		err := fs.WalkDir(fsys, m, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			hidden := p != m && !all && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_"))
			switch {
			case hidden && d.IsDir():
				return fs.SkipDir
			case !hidden && d.Type().IsRegular():
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
