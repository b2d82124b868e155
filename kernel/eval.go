package kernel

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/traefik/yaegi/interp"
)

// run evaluates the parts of a cell in order and returns the value of its last
// expression (invalid when it has none).
func (s *Session) run(ctx context.Context, c *nbCell) (reflect.Value, error) {
	var v reflect.Value
	for _, p := range c.parsed.parts {
		var err error
		if p.kind == importPart {
			err = s.importPart(ctx, c, p)
			v = reflect.Value{}
		} else {
			v, err = s.eval(ctx, c, p)
		}
		if err != nil {
			return reflect.Value{}, err
		}
	}
	last := c.parsed.lastExpr()
	if last == nil || s.isPrint(last) || s.returnsNothing(ctx, last) {
		return reflect.Value{}, nil
	}
	return v, nil
}

// returnsNothing tells calls of functions without results, after which yaegi hands back
// the value of an earlier expression.
func (s *Session) returnsNothing(ctx context.Context, e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	switch call.Fun.(type) {
	case *ast.Ident, *ast.SelectorExpr: // evaluating these has no side effects
	default:
		return false
	}
	fn, err := s.it.EvalWithContext(ctx, types.ExprString(call.Fun))
	return err == nil && fn.IsValid() && fn.Kind() == reflect.Func && fn.Type().NumOut() == 0
}

// isPrint tells calls whose results nobody wants shown (fmt.Println's byte count).
func (s *Session) isPrint(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	switch s.imported[pkg.Name] {
	case "fmt", "log":
		for _, p := range []string{"Print", "Fprint", "Fatal", "Panic"} {
			if strings.HasPrefix(sel.Sel.Name, p) {
				return true
			}
		}
	}
	return false
}

// importPart imports the packages of an import part that are not imported yet.
func (s *Session) importPart(ctx context.Context, c *nbCell, p *part) error {
	for _, spec := range p.file.Imports {
		ipath, _ := strconv.Unquote(spec.Path.Value)
		pos := p.fset.Position(spec.Pos())
		pkgName, ok := s.pkgs[ipath]
		if !ok {
			return lineError(c.src, "ImportError", fmt.Sprintf("package %q is not compiled into this kernel "+
				"(available: the standard library, GoMLX graph, tensors, shapes, dtypes, backends, and dpsflow's packages)", ipath),
				pos.Line, pos.Column)
		}
		name := pkgName
		if spec.Name != nil {
			name = spec.Name.Name
		}
		if name == "_" {
			continue
		}
		if prev, ok := s.imported[name]; ok {
			if prev == ipath {
				continue // imported by an earlier cell
			}
			return lineError(c.src, "ImportError", fmt.Sprintf("%s already names package %q in this session; import %q under another name",
				name, prev, ipath), pos.Line, pos.Column)
		}
		src := directive(pos.Line, pos.Column) + "import " + name + " " + strconv.Quote(ipath)
		if name == pkgName {
			src = directive(pos.Line, pos.Column) + "import " + strconv.Quote(ipath)
		}
		if _, err := s.it.EvalWithContext(ctx, src); err != nil {
			return s.cellError(ctx, c, p, err)
		}
		s.imported[name] = ipath
	}
	return nil
}

// eval evaluates one declaration or statement part.
func (s *Session) eval(ctx context.Context, c *nbCell, p *part) (reflect.Value, error) {
	s.stderr.takePanics()
	v, err := s.it.EvalWithContext(ctx, p.source())
	if err != nil {
		return reflect.Value{}, s.cellError(ctx, c, p, err)
	}
	s.stderr.takePanics() // a panic that was recovered
	return v, nil
}

var (
	posMsg   = regexp.MustCompile(`^(?:cell|_\.go)?:?(\d+):(\d+): (.*)$`)
	panicPos = regexp.MustCompile(`^(?:cell|_\.go)?:?(\d+):(\d+): panic: (.*?)(?:\(\.\.\.\))?\s*$`)
)

// cellError turns an interpreter error into a CellError with cell lines.
func (s *Session) cellError(ctx context.Context, c *nbCell, p *part, err error) error {
	if ctx.Err() != nil {
		msg := fmt.Sprintf("interrupted while running the %s at line %d", p.label, p.line)
		return &CellError{Name: "Interrupted", Value: msg, Traceback: append([]string{"Interrupted: " + msg}, quote(c.src, p.line, 0)...)}
	}
	var pe interp.Panic
	if errors.As(err, &pe) {
		if ex, ok := pe.Value.(*exitPanic); ok {
			return s.exitError(c, p, ex)
		}
		value := fmt.Sprint(pe.Value)
		tb := []string{"panic: " + value}
		frames := s.stderr.takePanics()
		for _, f := range frames {
			m := panicPos.FindStringSubmatch(strings.TrimSpace(f))
			if m == nil {
				continue
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			fn := strings.TrimPrefix(strings.TrimPrefix(m[3], "main."), "main")
			if fn == "" {
				fn = "cell"
			}
			tb = append(tb, fmt.Sprintf("  at line %d:%d in %s", line, col, fn))
			tb = append(tb, quote(c.src, line, col)...)
		}
		if len(frames) == 0 {
			tb = append(tb, fmt.Sprintf("  at line %d", p.line))
			tb = append(tb, quote(c.src, p.line, p.col)...)
		}
		first := p.line
		if len(frames) > 0 {
			if m := panicPos.FindStringSubmatch(strings.TrimSpace(frames[len(frames)-1])); m != nil {
				first, _ = strconv.Atoi(m[1])
			}
		}
		return &CellError{Name: "panic", Value: fmt.Sprintf("%s (line %d)", value, first), Traceback: tb}
	}
	msg := strings.TrimSpace(err.Error())
	if m := posMsg.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		text := m[3]
		if u, pos, ok := s.undefined(c); ok && strings.Contains(text, "definition loop") {
			text, line, col = "undefined: "+u, pos.Line, pos.Column
		}
		return lineError(c.src, "CompileError", text, line, col)
	}
	return lineError(c.src, "Error", msg, p.line, p.col)
}

// exitError is a cell's call of os.Exit or log.Fatal: the cell ends with an error
// that names the call, where it was, and that the kernel (and its values) lives on.
func (s *Session) exitError(c *nbCell, p *part, ex *exitPanic) error {
	line, col := p.line, p.col
	if frames := s.stderr.takePanics(); len(frames) > 0 { // innermost first
		if m := panicPos.FindStringSubmatch(strings.TrimSpace(frames[0])); m != nil {
			line, _ = strconv.Atoi(m[1])
			col, _ = strconv.Atoi(m[2])
		}
	}
	msg := fmt.Sprintf("the cell called %s; it ended the cell, not the kernel: "+
		"the values of earlier cells are kept", ex)
	if ex.call == "os.Exit" {
		return lineError(c.src, "Exit", msg, line, col)
	}
	return lineError(c.src, "Fatal", msg, line, col)
}

// known is every name a cell may read: what cells defined, the interpreter's globals
// and the imported package names.
func (s *Session) known() map[string]bool {
	k := map[string]bool{}
	for _, c := range s.nb.cells {
		for _, d := range c.names.Defs {
			k[d] = true
		}
	}
	for name := range s.globals() {
		k[name] = true
	}
	for name := range s.imported {
		k[name] = true
	}
	return k
}

// undefined finds the first name a cell reads that nothing defines, to replace the
// confusing messages yaegi gives for it.
func (s *Session) undefined(c *nbCell) (string, token.Position, bool) {
	known := s.known()
	var best string
	var bestPos token.Position
	for _, u := range c.names.Uses {
		if known[u] || isUniverse(u) {
			continue
		}
		pos := c.names.usePos[u]
		if best == "" || pos.Line < bestPos.Line || (pos.Line == bestPos.Line && pos.Column < bestPos.Column) {
			best, bestPos = u, pos
		}
	}
	return best, bestPos, best != ""
}

// globals is the interpreter's global variables and constants. yaegi's Globals can
// panic after a failed compilation (a symbol without its frame slot yet): then none.
func (s *Session) globals() (g map[string]reflect.Value) {
	defer func() {
		if recover() != nil {
			g = map[string]reflect.Value{}
		}
	}()
	return s.it.Globals()
}

// sink takes output written to the process's stdout and stderr (by compiled code) to
// the running cell, or to the log between cells.
func (s *Session) sink(name string, p []byte) {
	w := s.stdout
	if name == "stderr" {
		w = s.stderr
	}
	w.mu.Lock()
	target := w.w
	w.mu.Unlock()
	if target != nil {
		target.Write(p)
		return
	}
	if s.log != nil {
		s.log.Write(p)
	}
}

// Globals is the interpreter's global variables and constants by name.
func (s *Session) Globals() map[string]reflect.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.globals()
}
