package kernel

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"strings"
)

// A cell is Go source as a REPL sees it: imports, declarations and statements mixed in
// any order. yaegi evaluates a source that starts with a declaration keyword as a file
// and anything else as statements in main, so a cell is cut into parts of one kind that
// are evaluated in order. Every part carries a line directive so that positions in
// errors are the cell's own lines and columns.

type partKind int

const (
	importPart partKind = iota
	declPart
	stmtPart
)

// part is a run of top-level items of one kind; statements are one item per part, so
// that a panic is reported at its own statement.
type part struct {
	kind      partKind
	text      string
	line, col int // position of text in the cell

	file     *ast.File // importPart, declPart: the parsed declarations
	stmt     ast.Stmt  // stmtPart
	fset     *token.FileSet
	parseSrc string // the source the parser saw (prefix, directive, text)
	label    string // for errors: "import", "declaration", "statement"
}

func (p *part) parsedSource() string { return p.parseSrc }

// parsedCell is a cell cut into parts, with its syntax checked.
type parsedCell struct {
	src   string
	parts []*part
}

// lastExpr is the expression the cell ends with, whose value is shown, or nil.
func (c *parsedCell) lastExpr() ast.Expr {
	if len(c.parts) == 0 {
		return nil
	}
	p := c.parts[len(c.parts)-1]
	if es, ok := p.stmt.(*ast.ExprStmt); ok {
		return es.X
	}
	return nil
}

// cellFile is the file name used in line directives and stripped from error messages.
const cellFile = "_.go" // yaegi's own source name: it keys imports by file name

// directive positions the text that follows it at line:col of the cell.
func directive(line, col int) string { return fmt.Sprintf("/*line %s:%d:%d*/", cellFile, line, col) }

type token3 struct {
	pos token.Pos
	tok token.Token
	lit string
}

// parseCell cuts src into parts and parses each, returning a *CellError naming the
// line of the first syntax error.
func parseCell(src string) (*parsedCell, error) {
	fset := token.NewFileSet()
	file := fset.AddFile(cellFile, -1, len(src))
	var s scanner.Scanner
	var scanErr scanner.ErrorList
	s.Init(file, []byte(src), func(pos token.Position, msg string) { scanErr.Add(pos, msg) }, 0)
	var toks []token3
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		toks = append(toks, token3{pos, tok, lit})
	}
	if len(scanErr) > 0 {
		return nil, syntaxError(src, scanErr)
	}

	// Top-level items start at depth 0 after a semicolon (explicit or automatic), except
	// for the semicolons in the header of an if, for or switch, before its "{".
	type item struct {
		kind   partKind
		offset int
	}
	var items []item
	depth, atStart, header := 0, true, false
	for i, t := range toks {
		if depth == 0 && atStart && t.tok != token.SEMICOLON {
			items = append(items, item{classify(toks, i), file.Offset(t.pos)})
		}
		if depth == 0 {
			switch t.tok {
			case token.IF, token.FOR, token.SWITCH:
				header = true
			case token.LBRACE:
				header = false
			}
		}
		switch t.tok {
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
		}
		atStart = depth <= 0 && t.tok == token.SEMICOLON && !header
	}

	c := &parsedCell{src: src}
	for i := 0; i < len(items); {
		j := i + 1
		if items[i].kind != stmtPart { // declarations and imports group; statements do not
			for j < len(items) && items[j].kind == items[i].kind {
				j++
			}
		}
		end := len(src)
		if j < len(items) {
			end = items[j].offset
		}
		pos := file.Position(file.Pos(items[i].offset))
		p := &part{kind: items[i].kind, text: strings.TrimRight(src[items[i].offset:end], " \t\r\n;"),
			line: pos.Line, col: pos.Column}
		if err := p.parse(src); err != nil {
			return nil, err
		}
		c.parts = append(c.parts, p)
		i = j
	}
	return c, nil
}

// classify tells what the top-level item starting at toks[i] is.
func classify(toks []token3, i int) partKind {
	switch toks[i].tok {
	case token.IMPORT:
		return importPart
	case token.CONST, token.VAR, token.TYPE:
		return declPart
	case token.FUNC:
		// "func name" and "func (recv) name(" declare; "func(...)..." is a literal.
		if i+1 < len(toks) && toks[i+1].tok == token.IDENT {
			return declPart
		}
		if i+1 < len(toks) && toks[i+1].tok == token.LPAREN {
			depth := 0
			for j := i + 1; j < len(toks); j++ {
				switch toks[j].tok {
				case token.LPAREN:
					depth++
				case token.RPAREN:
					depth--
				}
				if depth == 0 {
					if j+2 < len(toks) && toks[j+1].tok == token.IDENT &&
						(toks[j+2].tok == token.LPAREN || toks[j+2].tok == token.LBRACK) {
						return declPart
					}
					break
				}
			}
		}
	}
	return stmtPart
}

// parse checks the syntax of the part and keeps its AST, positioned in the cell.
func (p *part) parse(src string) error {
	p.fset = token.NewFileSet()
	d := directive(p.line, p.col)
	var err error
	switch p.kind {
	case importPart, declPart:
		p.label = map[partKind]string{importPart: "import", declPart: "declaration"}[p.kind]
		p.parseSrc = "package main;" + d + p.text
		p.file, err = parser.ParseFile(p.fset, cellFile, p.parseSrc, parser.DeclarationErrors)
	default:
		p.label = "statement"
		var f *ast.File
		p.parseSrc = "package main;func _(){" + d + p.text + "\n}"
		f, err = parser.ParseFile(p.fset, cellFile, p.parseSrc, 0)
		if err == nil {
			body := f.Decls[0].(*ast.FuncDecl).Body.List
			if len(body) != 1 {
				return &CellError{Name: "SyntaxError", Value: fmt.Sprintf("line %d: cannot split this statement", p.line)}
			}
			p.stmt = body[0]
			p.file = f
		}
	}
	if err != nil {
		if el, ok := err.(scanner.ErrorList); ok {
			return syntaxError(src, el)
		}
		return &CellError{Name: "SyntaxError", Value: err.Error(), Traceback: []string{err.Error()}}
	}
	if p.kind == declPart {
		for _, d := range p.file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "main" {
				pos := p.fset.Position(fd.Pos())
				return lineError(src, "SyntaxError", "func main is not allowed in a cell: yaegi would run it after every cell; give it another name", pos.Line, pos.Column)
			}
		}
	}
	return nil
}

// source is the text handed to yaegi. A statement starts with ";" so that yaegi never
// takes a leading func literal for a declaration (which makes it re-run the literal as
// main after every later cell).
func (p *part) source() string {
	d := directive(p.line, p.col)
	if p.kind == stmtPart {
		return ";" + d + p.text
	}
	return d + p.text
}

// syntaxError reports the first error of a parse, with the line it is on.
func syntaxError(src string, el scanner.ErrorList) *CellError {
	el.Sort()
	e := el[0]
	return lineError(src, "SyntaxError", e.Msg, e.Pos.Line, e.Pos.Column)
}

// lineError is a CellError at line:col of the cell, quoting the line.
func lineError(src, name, msg string, line, col int) *CellError {
	value := fmt.Sprintf("line %d:%d: %s", line, col, msg)
	return &CellError{Name: name, Value: value, Traceback: append([]string{name + ": " + value}, quote(src, line, col)...)}
}

// quote returns the cell's line with a caret under col, for tracebacks.
func quote(src string, line, col int) []string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) {
		return nil
	}
	text := strings.TrimRight(lines[line-1], "\r")
	out := []string{fmt.Sprintf("%4d | %s", line, text)}
	if col >= 1 && col <= len(text)+1 {
		pad := strings.Map(func(r rune) rune {
			if r == '\t' {
				return '\t'
			}
			return ' '
		}, text[:col-1])
		out = append(out, "     | "+pad+"^")
	}
	return out
}
