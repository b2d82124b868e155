package kernel

import (
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strconv"
	"strings"
)

// cellNames is what a cell defines at top level and what it reads from elsewhere.
type cellNames struct {
	Defs    []string          // vars, consts, funcs, types and := names, sorted
	Uses    []string          // free identifiers that are not its own, sorted
	Imports map[string]string // import name ("" for the default) -> path
	decls   map[string]string // name -> source of its declaration, for inspect
	usePos  map[string]token.Position
}

// analyze finds the names a parsed cell defines and reads. The parser resolves the
// identifiers inside each part (locals, parameters, fields); what it leaves unresolved
// are the free identifiers: universe names, package names and names from other parts
// or cells. Reading a name means depending on the cell that defines it.
func analyze(c *parsedCell) cellNames {
	defs := map[string]bool{}
	uses := map[string]bool{}
	n := cellNames{Imports: map[string]string{}, decls: map[string]string{}, usePos: map[string]token.Position{}}
	def := func(id *ast.Ident, p *part, node ast.Node) {
		if id == nil || id.Name == "_" {
			return
		}
		defs[id.Name] = true
		if node != nil {
			n.decls[id.Name] = nodeText(p, node)
		}
	}
	for _, p := range c.parts {
		for _, id := range p.file.Unresolved {
			uses[id.Name] = true
			if _, ok := n.usePos[id.Name]; !ok {
				n.usePos[id.Name] = p.fset.Position(id.Pos())
			}
		}
		switch p.kind {
		case importPart:
			for _, s := range p.file.Imports {
				path, _ := strconv.Unquote(s.Path.Value)
				name := ""
				if s.Name != nil {
					name = s.Name.Name
				}
				n.Imports[name] = path
			}
		case declPart:
			for _, d := range p.file.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						def(d.Name, p, d)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.ValueSpec:
							for _, id := range s.Names {
								def(id, p, d)
							}
						case *ast.TypeSpec:
							def(s.Name, p, d)
						}
					}
				}
			}
		case stmtPart:
			if a, ok := p.stmt.(*ast.AssignStmt); ok && a.Tok == token.DEFINE {
				for _, e := range a.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						def(id, p, a)
					}
				}
			}
		}
	}
	for name := range uses {
		if defs[name] || name == "_" {
			continue
		}
		n.Uses = append(n.Uses, name)
	}
	for name := range defs {
		n.Defs = append(n.Defs, name)
	}
	slices.Sort(n.Defs)
	slices.Sort(n.Uses)
	return n
}

// isUniverse reports whether a free identifier is predeclared (int, len, nil, ...).
func isUniverse(name string) bool { return types.Universe.Lookup(name) != nil }

// nodeText is the source of a node of part p.
func nodeText(p *part, node ast.Node) string {
	f := p.fset.File(node.Pos())
	if f == nil {
		return ""
	}
	// The part was parsed behind a prefix; positions in the file are offsets in that
	// source, which is the part's text after the prefix and the line directive.
	start, end := f.Offset(node.Pos()), f.Offset(node.End())
	src := p.parsedSource()
	if start < 0 || end > len(src) || start > end {
		return ""
	}
	return strings.TrimSpace(src[start:end])
}
