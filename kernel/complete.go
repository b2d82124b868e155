package kernel

import (
	"fmt"
	"go/constant"
	"go/scanner"
	"go/token"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

func isIdentRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordBefore splits the text before cursor (in code points) into a qualifier ("fmt" in
// "fmt.Pri") and the partial identifier ("Pri").
func wordBefore(code string, cursor int) (qual, partial string) {
	r := []rune(code)
	cursor = max(0, min(cursor, len(r)))
	i := cursor
	for i > 0 && isIdentRune(r[i-1]) {
		i--
	}
	partial = string(r[i:cursor])
	if i > 0 && r[i-1] == '.' {
		j := i - 1
		for j > 0 && isIdentRune(r[j-1]) {
			j--
		}
		qual = string(r[j : i-1])
	}
	return qual, partial
}

// Complete offers the names in scope, or the members of a package or value after "x.".
func (s *Session) Complete(code string, cursor int) Completion {
	s.mu.Lock()
	defer s.mu.Unlock()
	cursor = max(0, min(cursor, len([]rune(code))))
	qual, partial := wordBefore(code, cursor)
	var cands []string
	if qual != "" {
		cands = s.members(qual)
	} else {
		for k := range s.known() {
			cands = append(cands, k)
		}
		for t := token.BREAK; t <= token.VAR; t++ {
			if t.IsKeyword() {
				cands = append(cands, t.String())
			}
		}
		cands = append(cands, universeNames()...)
	}
	seen := map[string]bool{}
	var matches []string
	for _, c := range cands {
		if strings.HasPrefix(c, partial) && !seen[c] {
			seen[c] = true
			matches = append(matches, c)
		}
	}
	sort.Strings(matches)
	return Completion{Matches: matches, CursorStart: cursor - len([]rune(partial)), End: cursor}
}

func universeNames() []string {
	return []string{"append", "bool", "byte", "cap", "clear", "close", "complex", "complex128", "complex64",
		"copy", "delete", "error", "false", "float32", "float64", "imag", "int", "int16", "int32", "int64",
		"int8", "iota", "len", "make", "max", "min", "new", "nil", "panic", "print", "println", "real",
		"recover", "rune", "string", "true", "uint", "uint16", "uint32", "uint64", "uint8", "uintptr", "any"}
}

// pkgPath resolves a package name used in a cell: imported ones first, else a unique
// exposed package of that name (so completion works before the import line runs).
func (s *Session) pkgPath(name string) (string, bool) {
	if p, ok := s.imported[name]; ok {
		return p, true
	}
	var found []string
	for p, n := range s.pkgs {
		if n == name {
			found = append(found, p)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}

// members lists what may follow "qual.": package symbols, or the fields and methods
// of a global value.
func (s *Session) members(qual string) []string {
	if p, ok := s.pkgPath(qual); ok {
		return s.syms[p]
	}
	v, ok := s.globals()[qual]
	if !ok || !v.IsValid() {
		return nil
	}
	var out []string
	t := v.Type()
	for i := 0; i < t.NumMethod(); i++ {
		out = append(out, t.Method(i).Name)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.IsExported() {
				out = append(out, f.Name)
			}
		}
	}
	return out
}

// wordAt is the possibly qualified identifier under or just before the cursor.
func wordAt(code string, cursor int) (qual, name string) {
	r := []rune(code)
	cursor = max(0, min(cursor, len(r)))
	end := cursor
	for end < len(r) && isIdentRune(r[end]) {
		end++
	}
	// On the package of "pkg.Name", the member is what is meant.
	if end+1 < len(r) && r[end] == '.' && isIdentRune(r[end+1]) && !strings.Contains(string(r[:cursor]), ".") {
		end++
		for end < len(r) && isIdentRune(r[end]) {
			end++
		}
	}
	return wordBefore(string(r[:end]), end)
}

// Inspect describes the symbol at the cursor: its kind, type or signature, the
// declaration of a name defined in a cell, and documentation when the source of a
// package can be found.
func (s *Session) Inspect(code string, cursor, detail int) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qual, name := wordAt(code, cursor)
	text := s.describe(qual, name)
	if text == "" {
		return nil, false
	}
	return map[string]any{"text/plain": text}, true
}

func (s *Session) describe(qual, name string) string {
	if name == "" {
		return ""
	}
	if qual != "" {
		if p, ok := s.pkgPath(qual); ok {
			v, ok := s.values[p][name]
			if !ok {
				return ""
			}
			out := describeSymbol(qual, name, v)
			if d := packageDoc(p, name); d != "" {
				out += "\n\n" + d
			}
			return out
		}
		return ""
	}
	if p, ok := s.pkgPath(name); ok {
		out := fmt.Sprintf("package %s // import %q\n\n%d exported names: %s", name, p, len(s.syms[p]), strings.Join(s.syms[p], " "))
		if d := packageDoc(p, ""); d != "" {
			out += "\n\n" + d
		}
		return out
	}
	var parts []string
	own := s.nb.owners()
	if c := own[name]; c != nil {
		parts = append(parts, fmt.Sprintf("defined in cell %s:\n%s", c.label, c.names.decls[name]))
	}
	if v, ok := s.globals()[name]; ok && v.IsValid() {
		val := fmt.Sprintf("%v", v)
		if len(val) > 500 {
			val = val[:500] + "…"
		}
		parts = append(parts, fmt.Sprintf("%s %s = %s", name, v.Type(), val))
	}
	if len(parts) == 0 && isUniverse(name) {
		parts = append(parts, fmt.Sprintf("%s is predeclared in Go (see https://go.dev/ref/spec#Predeclared_identifiers)", name))
	}
	return strings.Join(parts, "\n\n")
}

// describeSymbol says what an exported symbol is, from its reflect value as yaegi
// extract stores it: a pointer to nil for a type, a pointer's element for a
// variable, a constant.Value for a constant, the function itself for a function.
func describeSymbol(pkg, name string, v reflect.Value) string {
	if !v.IsValid() {
		return pkg + "." + name
	}
	if c, ok := v.Interface().(constant.Value); ok {
		return fmt.Sprintf("const %s.%s = %s", pkg, name, c.ExactString())
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Func:
		return fmt.Sprintf("func %s.%s%s", pkg, name, strings.TrimPrefix(t.String(), "func"))
	case t.Kind() == reflect.Pointer && v.IsNil():
		et := t.Elem()
		out := fmt.Sprintf("type %s.%s %s", pkg, name, et.Kind())
		var methods []string
		for _, mt := range []reflect.Type{et, t} {
			for i := 0; i < mt.NumMethod(); i++ {
				m := mt.Method(i)
				sig := m.Type.String()
				if mt.Kind() != reflect.Interface {
					sig = "func" + dropReceiver(m.Type)
				}
				methods = append(methods, "  "+m.Name+strings.TrimPrefix(sig, "func"))
			}
			if et.Kind() == reflect.Interface {
				break
			}
		}
		if len(methods) > 0 {
			out += "\nmethods:\n" + strings.Join(dedupe(methods), "\n")
		}
		return out
	default:
		return fmt.Sprintf("var %s.%s %s", pkg, name, t)
	}
}

// dropReceiver renders a method type without its receiver argument.
func dropReceiver(t reflect.Type) string {
	var in, out []string
	for i := 1; i < t.NumIn(); i++ {
		in = append(in, t.In(i).String())
	}
	for i := 0; i < t.NumOut(); i++ {
		out = append(out, t.Out(i).String())
	}
	s := "(" + strings.Join(in, ", ") + ")"
	switch len(out) {
	case 0:
	case 1:
		s += " " + out[0]
	default:
		s += " (" + strings.Join(out, ", ") + ")"
	}
	return s
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// IsComplete tells a front end whether to run the code or wait for more lines.
func (s *Session) IsComplete(code string) (status, indent string) {
	if strings.TrimSpace(code) == "" {
		return "complete", ""
	}
	fset := token.NewFileSet()
	file := fset.AddFile("cell", -1, len(code))
	var sc scanner.Scanner
	var errs scanner.ErrorList
	sc.Init(file, []byte(code), func(pos token.Position, msg string) { errs.Add(pos, msg) }, 0)
	depth := 0
	var last token.Token
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		switch tok {
		case token.LPAREN, token.LBRACK, token.LBRACE:
			depth++
		case token.RPAREN, token.RBRACK, token.RBRACE:
			depth--
			if depth < 0 {
				return "invalid", ""
			}
		}
		if !(tok == token.SEMICOLON && lit == "\n") {
			last = tok
		}
	}
	for _, e := range errs {
		if strings.Contains(e.Msg, "not terminated") {
			return "incomplete", ""
		}
	}
	if len(errs) > 0 {
		return "invalid", ""
	}
	if depth > 0 {
		return "incomplete", strings.Repeat("    ", depth)
	}
	if last.IsOperator() && last != token.RPAREN && last != token.RBRACK && last != token.RBRACE &&
		last != token.SEMICOLON && last != token.INC && last != token.DEC {
		return "incomplete", "    "
	}
	if _, err := parseCell(code); err != nil {
		return "invalid", ""
	}
	return "complete", ""
}

var pagerRequest = regexp.MustCompile(`^\s*(\?)?([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)(\?)?\s*$`)

// pager answers "?name" and "name?" cells with the inspect text as a pager payload.
func (s *Session) pager(code string) (map[string]any, bool) {
	m := pagerRequest.FindStringSubmatch(code)
	if m == nil || (m[1] == "") == (m[3] == "") {
		return nil, false
	}
	qual, name := "", m[2]
	if i := strings.IndexByte(name, '.'); i >= 0 {
		qual, name = name[:i], name[i+1:]
	}
	text := s.describe(qual, name)
	if text == "" {
		text = "no documentation found for " + m[2]
	}
	return map[string]any{"source": "page", "data": map[string]any{"text/plain": text}, "start": 0}, true
}
