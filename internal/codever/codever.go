package codever

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// TableFile is where the table lives, relative to the module root.
const TableFile = "internal/codever/versions.txt"

//go:embed versions.txt
var versionsTxt []byte

// Package is one line of the table.
type Package struct {
	Path    string   // relative to the module root, slash-separated ("." for the root)
	Version int      // bumped by the generator whenever Hash changes
	Hash    string   // digest of the code and embedded files (see the package doc)
	Imports []string // in-module packages it imports directly, sorted, as paths like Path
}

// Table is a set of package versions of one module.
type Table struct {
	Module string // module path, from go.mod
	pkgs   map[string]Package
}

// NewTable makes a table of the given packages (later duplicates win).
func NewTable(module string, pkgs ...Package) *Table {
	t := &Table{Module: module, pkgs: make(map[string]Package, len(pkgs))}
	for _, p := range pkgs {
		p.Imports = append([]string(nil), p.Imports...)
		sort.Strings(p.Imports)
		t.pkgs[p.Path] = p
	}
	return t
}

// Packages returns the table's packages sorted by path.
func (t *Table) Packages() []Package {
	out := make([]Package, 0, len(t.pkgs))
	for _, p := range t.pkgs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Package returns the entry of a package, named relative to the module root or by its
// full import path.
func (t *Table) Package(name string) (Package, bool) {
	p, ok := t.pkgs[t.rel(name)]
	return p, ok
}

// rel maps a full import path of the module to a path relative to its root.
func (t *Table) rel(name string) string {
	switch {
	case t.Module != "" && name == t.Module:
		return "."
	case t.Module != "" && strings.HasPrefix(name, t.Module+"/"):
		return name[len(t.Module)+1:]
	}
	return name
}

// Lookup returns a short digest of the versions (and recorded hashes) of pkgs and of
// every in-module package they import, directly or not. The order and repetition of pkgs do not matter; no
// packages give "". Packages missing from the table make it an error naming them.
func (t *Table) Lookup(pkgs ...string) (string, error) {
	if len(pkgs) == 0 {
		return "", nil
	}
	seen := map[string]bool{}
	var unknown []string
	var visit func(string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		e, ok := t.pkgs[p]
		if !ok {
			unknown = append(unknown, p)
			return
		}
		for _, q := range e.Imports {
			visit(q)
		}
	}
	for _, p := range pkgs {
		visit(t.rel(p))
	}
	names := make([]string, 0, len(seen))
	for p := range seen {
		names = append(names, p)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, p := range names {
		if e, ok := t.pkgs[p]; ok {
			// The hash too: two branches may each bump a package to the same version.
			fmt.Fprintf(h, "%s %d %s\n", p, e.Version, e.Hash)
		} else {
			fmt.Fprintf(h, "%s ?\n", p)
		}
	}
	d := hex.EncodeToString(h.Sum(nil))[:16]
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return d, fmt.Errorf("codever: unknown package(s) %s (not in %s; run go run ./internal/codever/gen)", strings.Join(unknown, ", "), TableFile)
	}
	return d, nil
}

var embedded = sync.OnceValues(func() (*Table, error) { return Parse(versionsTxt) })

// Embedded is the table committed with this module (versions.txt).
func Embedded() (*Table, error) { return embedded() }

// Lookup is Table.Lookup on the embedded table.
func Lookup(pkgs ...string) (string, error) {
	t, err := Embedded()
	if err != nil {
		return "", err
	}
	return t.Lookup(pkgs...)
}

// Of is Lookup without the error, for kind registrations such as
//
//	dag.Kind{Name: "sample", CodeVersion: codever.Of("nodes/sampler"), ...}
//
// Name the packages whose code decides the kind's results (their imports follow): naming
// a composition package such as nodes/pipeline pulls in nearly everything, and its
// cache entries then go stale on any change. An unknown package still gives a
// deterministic digest (it counts as version "?"); TestCodeverNamesExist checks that
// every literal name passed to codever.Of in the repository is known.
func Of(pkgs ...string) string {
	t, err := Embedded()
	if err != nil {
		t = NewTable("")
	}
	d, _ := t.Lookup(pkgs...)
	return d
}

// Update returns the table for the packages as they are now (scanned by Scan, versions
// ignored): a package keeps its version while its hash is unchanged, gets version+1 when
// it changed and version 1 when new; packages gone are dropped. It also returns one line
// per difference, sorted by package (none: t is current).
func (t *Table) Update(now *Table) (*Table, []string) {
	out := NewTable(now.Module)
	var changes []string
	for _, p := range now.Packages() {
		old, ok := t.pkgs[p.Path]
		switch {
		case !ok:
			p.Version = 1
			changes = append(changes, p.Path+": new package")
		case old.Hash != p.Hash:
			p.Version = old.Version + 1
			changes = append(changes, fmt.Sprintf("%s: code changed (version %d → %d)", p.Path, old.Version, p.Version))
		default:
			p.Version = old.Version
			if strings.Join(old.Imports, " ") != strings.Join(p.Imports, " ") {
				changes = append(changes, p.Path+": recorded imports out of date")
			}
		}
		out.pkgs[p.Path] = p
	}
	for _, p := range t.Packages() {
		if _, ok := now.pkgs[p.Path]; !ok {
			changes = append(changes, p.Path+": package removed")
		}
	}
	if t.Module != now.Module {
		changes = append(changes, fmt.Sprintf("module path %q → %q", t.Module, now.Module))
	}
	sort.Strings(changes)
	return out, changes
}

const header = `# Code versions of this module's packages, for cache keys (see doc.go).
# Generated by: go run ./internal/codever/gen   (do not edit by hand)
# path version hash in-module-imports...
`

// Format writes the table in the versions.txt format that Parse reads.
func (t *Table) Format() []byte {
	var b bytes.Buffer
	b.WriteString(header)
	fmt.Fprintf(&b, "module %s\n", t.Module)
	for _, p := range t.Packages() {
		fmt.Fprintf(&b, "%s %d %s", p.Path, p.Version, p.Hash)
		for _, q := range p.Imports {
			b.WriteString(" " + q)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse reads a table written by Format.
func Parse(data []byte) (*Table, error) {
	t := NewTable("")
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == "module" && len(f) == 2 {
			t.Module = f[1]
			continue
		}
		v, err := strconv.Atoi(safeIndex(f, 1))
		if len(f) < 3 || err != nil || v < 1 {
			return nil, fmt.Errorf("codever: %s:%d: want \"path version hash imports...\", got %q", TableFile, i+1, line)
		}
		if _, dup := t.pkgs[f[0]]; dup {
			return nil, fmt.Errorf("codever: %s:%d: package %s listed twice", TableFile, i+1, f[0])
		}
		t.pkgs[f[0]] = Package{Path: f[0], Version: v, Hash: f[2], Imports: f[3:]}
	}
	return t, nil
}

func safeIndex(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}
