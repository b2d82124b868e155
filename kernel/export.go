package kernel

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dpsflow/dpsflow/dag"
)

// CellGraph is the dependency graph of a notebook's code cells as a dag.Graph, for
// running or exporting a notebook as a workflow: one CellKind node per cell, with ids
// c1, c2, ... in notebook order, the cell's source as its "source" param, and an input
// port per name it reads from another cell ("x": "c2.x"). A name is read from the
// nearest cell above that defines it (top-to-bottom semantics), else from one below.
// A syntax error is reported with the cell's position.
func CellGraph(sources []string) (*dag.Graph, error) {
	names := make([]cellNames, len(sources))
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
		return nil, err
	}
	return g, nil
}

// NewCellKind is the CellKind for the cells of g, running them in session s with their
// output sent to out (nil: discarded). Its ports are the names the cells exchange (all
// of type "any", so never cached): an output per name a cell defines, set to the
// value of that global after the cell ran (nil for functions and types, and for the
// names other cells define), an optional input per name read.
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
		_, err := s.Execute(c.Context(), ExecRequest{Code: c.String("source"), CellID: "dag:" + c.Node().ID, NoRerun: true}, out)
		if err != nil {
			return err
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
