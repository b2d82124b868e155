package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dpsflow/dpsflow/kernel/internal/hook"
	"github.com/dpsflow/dpsflow/kernel/symbols"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// Session is the Go engine of the kernel: a yaegi interpreter whose values persist
// from cell to cell, with the stdlib, GoMLX and dpsflow compiled in, and the reactive
// table of the cells that ran.
type Session struct {
	mu             sync.Mutex
	it             *interp.Interpreter
	stdout, stderr *switchWriter
	imported       map[string]string // package name in cells -> import path
	nb             *notebook

	pkgs   map[string]string   // import path -> package name, of every exposed package
	syms   map[string][]string // import path -> its exported names, sorted
	values map[string]map[string]reflect.Value
	log    io.Writer // where stray output goes between cells

	// syncOutput, when set, waits until what compiled code wrote to the process's
	// stdout and stderr has reached the running cell.
	syncOutput func()
}

// preimported are imported into every session, so cells can use them at once.
var preimported = []string{
	"github.com/dpsflow/dpsflow/kernel/display",
	"github.com/dpsflow/dpsflow/kernel/nb",
}

// NewSession returns a fresh session. It panics only if the compiled-in symbols are
// broken, which the tests catch.
func NewSession() *Session {
	s := &Session{stdout: &switchWriter{}, stderr: &switchWriter{stderr: true},
		pkgs: map[string]string{}, syms: map[string][]string{}, values: map[string]map[string]reflect.Value{}}
	for _, exp := range []map[string]map[string]reflect.Value{stdlib.Symbols, symbols.All()} {
		for key, m := range exp {
			dir, name := path.Dir(key), path.Base(key)
			if dir == "." || strings.HasPrefix(dir, "github.com/traefik/yaegi") {
				continue
			}
			s.pkgs[dir] = name
			s.values[dir] = m
			var names []string
			for n := range m {
				if n != "" && n[0] != '_' {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			s.syms[dir] = names
		}
	}
	if err := s.Reset(); err != nil {
		panic(err)
	}
	return s
}

// Reset starts over with a new interpreter and an empty notebook.
func (s *Session) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Unrestricted: cells see the real environment ($DPSFLOW_BACKEND, paths). os.Exit
	// and log.Fatal end the cell, not the kernel (useExitOverrides).
	it := interp.New(interp.Options{Stdout: s.stdout, Stderr: s.stderr, Unrestricted: true})
	if err := it.Use(stdlib.Symbols); err != nil {
		return err
	}
	if err := useExitOverrides(it); err != nil {
		return err
	}
	if err := it.Use(symbols.All()); err != nil {
		return err
	}
	s.it, s.imported, s.nb = it, map[string]string{}, newNotebook()
	for _, p := range preimported {
		if _, err := it.Eval("import " + strconv.Quote(p)); err != nil {
			return fmt.Errorf("pre-importing %s: %w", p, err)
		}
		s.imported[s.pkgs[p]] = p
	}
	return nil
}

// cellIO is where a running cell's output goes: two buffered streams and displays,
// which flush the streams first so that output keeps its order.
type cellIO struct {
	out            Output
	stdout, stderr *stream
}

func newCellIO(out Output) *cellIO {
	return &cellIO{out: out, stdout: &stream{name: "stdout", send: out.Stream}, stderr: &stream{name: "stderr", send: out.Stream}}
}

func (c *cellIO) flush() {
	c.stdout.Flush()
	c.stderr.Flush()
}

func (c *cellIO) display(e hook.Event) {
	c.flush()
	c.out.Display(Display{Data: e.Data, Metadata: e.Metadata, ID: e.ID, Update: e.Update, Clear: e.Clear, Wait: e.Wait})
}

// Execute runs a cell, then re-runs the cells that depend on what it defines.
func (s *Session) Execute(ctx context.Context, req ExecRequest, out Output) (res *ExecResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { // a bug of ours must not leave the front end waiting for a reply
		if r := recover(); r != nil {
			res, err = nil, &CellError{Name: "InternalError", Value: fmt.Sprint(r),
				Traceback: []string{fmt.Sprintf("InternalError: %v (a bug in the dpsflow kernel)", r)}}
		}
	}()
	io := newCellIO(out)
	s.stdout.set(io.stdout)
	s.stderr.set(io.stderr)
	restore := hook.Set(io.display, ctx)
	defer func() {
		if s.syncOutput != nil {
			s.syncOutput()
		}
		restore()
		s.stdout.set(nil)
		s.stderr.set(nil)
		io.flush()
		if s.stderr.tee != nil { // what was logged so far cannot explain a later crash
			s.stderr.tee.Write([]byte(cellEndMarker + "\n"))
		}
	}()

	if page, ok := s.pager(req.Code); ok {
		return &ExecResult{Payload: []map[string]any{page}}, nil
	}
	parsed, err := parseCell(req.Code)
	if err != nil {
		return nil, err
	}
	names := analyze(parsed)
	c, undo := s.nb.upsert(req.CellID, fmt.Sprintf("[%d]", req.Count), req.Code, parsed, names)
	if err := s.nb.check(); err != nil {
		undo()
		return nil, err
	}
	v, err := s.run(ctx, c)
	if err != nil {
		if req.CellID == "" { // without ids a failed cell is forgotten; with ids it is the cell's source now
			undo()
		}
		return nil, err
	}
	if req.NoRerun {
		return &ExecResult{Data: bundle(v)}, nil
	}
	deps, err := s.nb.dependents(c)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, d := range deps {
		dv, err := s.run(ctx, d)
		if err != nil {
			var ce *CellError
			if !errors.As(err, &ce) {
				ce = &CellError{Name: "Error", Value: err.Error()}
			}
			msg := fmt.Sprintf("re-running dependent cell %s failed: %s", d.label, ce.Value)
			io.stderr.Write([]byte(fmt.Sprintf("re-ran dependents: %s\n", strings.Join(append(ran, d.label), " "))))
			return nil, &CellError{Name: "DependentError", Value: msg,
				Traceback: append([]string{"DependentError: " + msg, "in cell " + d.label + ":"}, ce.Traceback...)}
		}
		if b := bundle(dv); b != nil {
			io.display(hook.Event{Data: b})
		}
		ran = append(ran, d.label)
	}
	if len(ran) > 0 {
		io.stdout.Write([]byte("re-ran dependents: " + strings.Join(ran, " ") + "\n"))
	}
	return &ExecResult{Data: bundle(v)}, nil
}
