package kernel

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
)

// CellKind is the dag kind of a notebook cell.
const CellKind = "go-cell"

// nbCell is a cell as the reactive graph knows it.
type nbCell struct {
	id     string // its dag node id: "c1", "c2", ... in order of first run
	key    string // the front end's cell id, or "" when it sends none
	label  string // "[3]": the prompt number of its last run by the user
	src    string
	parsed *parsedCell
	names  cellNames
	seq    int // order of its last run: the latest definition of a name wins
}

// notebook is the table of cells that ran, from which the dependency graph is built.
//
// The rules: a cell depends on the cell that defines a name it reads, the definer
// being the one that ran last among those defining that name. A cell whose names are
// all defined again by cells that ran later is superseded and leaves the graph (it
// would otherwise clobber the newer definitions when re-run).
type notebook struct {
	cells []*nbCell
	byKey map[string]*nbCell
	next  int
	seq   int
}

func newNotebook() *notebook { return &notebook{byKey: map[string]*nbCell{}} }

// upsert records a run of src: the cell with the same front-end key, else (without
// keys) a cell with the same source, else a new cell. It returns the cell and a
// function that undoes the change.
func (nb *notebook) upsert(key, label, src string, parsed *parsedCell, names cellNames) (*nbCell, func()) {
	var c *nbCell
	if key != "" {
		c = nb.byKey[key]
	} else {
		for _, old := range nb.cells {
			if old.key == "" && old.src == src {
				c = old
				break
			}
		}
	}
	nb.seq++
	if c == nil {
		nb.next++
		c = &nbCell{id: fmt.Sprintf("c%d", nb.next), key: key}
		nb.cells = append(nb.cells, c)
		if key != "" {
			nb.byKey[key] = c
		}
		undo := func() {
			nb.cells = slices.DeleteFunc(nb.cells, func(x *nbCell) bool { return x == c })
			if key != "" {
				delete(nb.byKey, key)
			}
		}
		c.label, c.src, c.parsed, c.names, c.seq = label, src, parsed, names, nb.seq
		return c, undo
	}
	old := *c
	c.label, c.src, c.parsed, c.names, c.seq = label, src, parsed, names, nb.seq
	return c, func() { *c = old }
}

// owners maps each defined name to the cell that defines it last.
func (nb *notebook) owners() map[string]*nbCell {
	own := map[string]*nbCell{}
	for _, c := range nb.cells {
		for _, d := range c.names.Defs {
			if o := own[d]; o == nil || o.seq < c.seq {
				own[d] = c
			}
		}
	}
	return own
}

// live is the cells in the graph: those not superseded, in order of first run.
func (nb *notebook) live(own map[string]*nbCell) []*nbCell {
	var out []*nbCell
	for _, c := range nb.cells {
		superseded := len(c.names.Defs) > 0
		for _, d := range c.names.Defs {
			if own[d] == c {
				superseded = false
			}
		}
		if !superseded {
			out = append(out, c)
		}
	}
	return out
}

// graph is the dependency graph: one "go-cell" node per live cell, with an input port
// per name it reads from another cell ("x" <- "c2.x").
func (nb *notebook) graph() (*dag.Graph, map[string]*nbCell) {
	own := nb.owners()
	g := &dag.Graph{Name: "notebook"}
	byID := map[string]*nbCell{}
	for _, c := range nb.live(own) {
		inputs := map[string]string{}
		for _, u := range c.names.Uses {
			if o := own[u]; o != nil && o != c {
				inputs[u] = o.id + "." + u
			}
		}
		g.Add(c.id, CellKind, map[string]any{"source": c.src}, inputs)
		byID[c.id] = c
	}
	return g, byID
}

// check reports a dependency cycle as an error naming the cells and the names.
func (nb *notebook) check() error {
	g, byID := nb.graph()
	_, err := g.Order()
	var ce *dag.CycleError
	if !errors.As(err, &ce) {
		return err
	}
	var lines []string
	for _, cyc := range ce.Cycles {
		var steps []string
		for i, id := range cyc {
			next := byID[cyc[(i+1)%len(cyc)]]
			var names []string
			for port, ref := range g.Node(next.id).Inputs {
				if strings.HasPrefix(ref, id+".") {
					names = append(names, port)
				}
			}
			slices.Sort(names)
			steps = append(steps, fmt.Sprintf("%s reads %s from %s", next.label, strings.Join(names, ", "), byID[id].label))
		}
		lines = append(lines, strings.Join(steps, "; "))
	}
	msg := "dependency cycle: " + strings.Join(lines, " | ")
	return &CellError{Name: "CycleError", Value: msg, Traceback: []string{"CycleError: " + msg}}
}

// dependents are the cells to re-run after c ran, in topological order.
func (nb *notebook) dependents(c *nbCell) ([]*nbCell, error) {
	g, byID := nb.graph()
	if g.Node(c.id) == nil {
		return nil, nil
	}
	ids, err := g.Downstream(c.id)
	if err != nil {
		return nil, err
	}
	out := make([]*nbCell, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}
