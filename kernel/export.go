package kernel

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/kernel/symbols"
	"github.com/traefik/yaegi/stdlib"
)

// CellGraph is the dependency graph of a notebook's code cells as a dag.Graph, for
// running or exporting a notebook as a workflow: one CellKind node per cell, with ids
// c1, c2, ... in notebook order, the cell's source as its "source" param, and an input
// port per name it reads from another cell ("x": "c2.x"). A name is read from the
// nearest cell above that defines it (top-to-bottom semantics), else from one below; a
// cell that uses a package runs after the nearest cell above that imports it.
// A syntax error is reported with the cell's position, and cells that depend on each
// other in a cycle with the names each reads from the next.
func CellGraph(sources []string) (*dag.Graph, error) {
	names := make([]cellNames, len(sources))
	imports := make([]map[string]bool, len(sources)) // package names each cell imports
	for i, src := range sources {
		p, err := parseCell(src)
		if err != nil {
			var ce *CellError
			if errors.As(err, &ce) {
				return nil, fmt.Errorf("cell %d: %s", i+1, ce.Value)
			}
			return nil, fmt.Errorf("cell %d: %w", i+1, err)
		}
		names[i] = analyze(p)
		imports[i] = importNames(p)
	}
	definer := func(name string, reader int) int {
		for j := reader - 1; j >= 0; j-- {
			if slices.Contains(names[j].Defs, name) {
				return j
			}
		}
		for j := reader + 1; j < len(names); j++ {
			if slices.Contains(names[j].Defs, name) {
				return j
			}
		}
		return -1
	}
	g := &dag.Graph{Name: "notebook"}
	readers := map[int][]int{} // definer -> cells reading from it
	for i, src := range sources {
		inputs := map[string]string{}
		for _, u := range names[i].Uses {
			if j := definer(u, i); j >= 0 {
				inputs[u] = fmt.Sprintf("c%d.%s", j+1, u)
				readers[j] = append(readers[j], i)
				continue
			}
			// A package name: the cell runs after the nearest cell above that imports it.
			for j := i - 1; j >= 0; j-- {
				if imports[j][u] {
					inputs[afterPort(j)] = fmt.Sprintf("c%d.%s", j+1, donePort)
					break
				}
			}
		}
		// A cell that redefines a name runs after the cells above that read the old
		// definition, or a parallel run could show them the new value.
		for _, d := range names[i].Defs {
			for j := i - 1; j >= 0; j-- {
				if slices.Contains(names[j].Defs, d) {
					for _, r := range readers[j] {
						if r < i && slices.Contains(names[r].Uses, d) {
							inputs[afterPort(r)] = fmt.Sprintf("c%d.%s", r+1, donePort)
						}
					}
					break
				}
			}
		}
		g.Add(fmt.Sprintf("c%d", i+1), CellKind, map[string]any{"source": src}, inputs)
	}
	if _, err := g.Order(); err != nil {
		return nil, describeCycle(g, err)
	}
	return g, nil
}

// describeCycle says which cells read which names from each other in a dependency
// cycle of a CellGraph ("cell 1 reads b from cell 2; cell 2 reads a from cell 1"); the
// *dag.CycleError stays available to errors.As.
func describeCycle(g *dag.Graph, err error) error {
	var ce *dag.CycleError
	if !errors.As(err, &ce) {
		return err
	}
	label := func(id string) string { return "cell " + strings.TrimPrefix(id, "c") }
	var cycles []string
	for _, cyc := range ce.Cycles {
		var steps []string
		for i, from := range cyc {
			to := cyc[(i+1)%len(cyc)]
			var names []string
			for port, ref := range g.Node(to).Inputs {
				if strings.HasPrefix(ref, from+".") && !strings.HasPrefix(port, "after_") {
					names = append(names, port)
				}
			}
			slices.Sort(names)
			if len(names) == 0 { // an ordering edge: an import, or a redefinition
				steps = append(steps, fmt.Sprintf("%s runs after %s", label(to), label(from)))
				continue
			}
			steps = append(steps, fmt.Sprintf("%s reads %s from %s", label(to), strings.Join(names, ", "), label(from)))
		}
		cycles = append(cycles, strings.Join(steps, "; "))
	}
	return &cellCycleError{msg: "the cells depend on each other in a cycle (a cell reads a name from the nearest cell above " +
		"that defines it, else from one below): " + strings.Join(cycles, " | "), cycle: ce}
}

type cellCycleError struct {
	msg   string
	cycle *dag.CycleError
}

func (e *cellCycleError) Error() string { return e.msg }
func (e *cellCycleError) Unwrap() error { return e.cycle }

// NewCellKind is the CellKind for the cells of g, running them in session s with their
// output (streams, displays, and the cell's value as a display) sent to out (nil:
// discarded). Its ports are the names the cells exchange (all of type "any", so never
// cached): an output per name a cell defines, set to the value of that global after the
// cell ran (nil for functions and types, and for the names other cells define), an
// optional input per name read.
func NewCellKind(g *dag.Graph, s *Session, out Output) dag.Kind {
	if out == nil {
		out = discard{}
	}
	ins, outs := map[string]bool{}, map[string]bool{donePort: true}
	for _, n := range g.Nodes {
		for port, ref := range n.Inputs {
			ins[port] = true
			if _, p, err := dag.SplitRef(ref); err == nil {
				outs[p] = true
			}
		}
	}
	k := dag.Kind{
		Name:    CellKind,
		Version: "1",
		Doc:     "a Go notebook cell, run in a shared interpreter",
		Params:  []dag.Param{{Name: "source", Type: "string", Doc: "the cell's Go source", Required: true}},
		NoCache: true, // cells act on the shared interpreter
	}
	for _, p := range sortedSet(ins) {
		k.Inputs = append(k.Inputs, dag.Port{Name: p, Type: "any", Optional: true})
	}
	for _, p := range sortedSet(outs) {
		k.Outputs = append(k.Outputs, dag.Port{Name: p, Type: "any"})
	}
	k.Run = func(c *dag.Call) error {
		res, err := s.Execute(c.Context(), ExecRequest{Code: c.String("source"), CellID: "dag:" + c.Node().ID, NoRerun: true}, out)
		if err != nil {
			return err
		}
		if res != nil && res.Data != nil { // the cell's value, as a notebook would show it
			out.Display(Display{Data: res.Data, Metadata: res.Metadata})
		}
		globals := s.Globals()
		for _, p := range k.Outputs {
			var v any
			if p.Name == donePort {
				v = true
			} else if gv, ok := globals[p.Name]; ok && gv.IsValid() && gv.CanInterface() {
				v = gv.Interface()
			}
			c.Set(p.Name, v)
		}
		return nil
	}
	return k
}

// importNames are the names under which a cell's import lines make packages known
// (the package's own name, taken from the compiled-in packages, unless renamed).
func importNames(p *parsedCell) map[string]bool {
	out := map[string]bool{}
	for _, prt := range p.parts {
		if prt.kind != importPart {
			continue
		}
		for _, spec := range prt.file.Imports {
			ipath, _ := strconv.Unquote(spec.Path.Value)
			name := packageNames()[ipath]
			if name == "" {
				name = path.Base(ipath)
			}
			if spec.Name != nil {
				name = spec.Name.Name
			}
			out[name] = true
		}
	}
	return out
}

// packageNames maps the import path of every package a cell can import to its name.
var packageNames = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, exp := range []map[string]map[string]reflect.Value{stdlib.Symbols, symbols.All()} {
		for key := range exp {
			m[path.Dir(key)] = path.Base(key)
		}
	}
	return m
})

// donePort is an output every cell sets, and afterPort an input on it, for ordering
// without data (write after read).
const donePort = "done_"

func afterPort(cell int) string { return fmt.Sprintf("after_c%d_", cell+1) }

type discard struct{}

func (discard) Stream(string, string) {}
func (discard) Display(Display)       {}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
