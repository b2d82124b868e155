package dag

import (
	"container/heap"
	"fmt"
	"strings"
)

// Graph is a workflow: nodes wired output-to-input. The zero value is an empty graph.
type Graph struct {
	Name  string  `yaml:"name,omitempty"`
	Seed  uint64  `yaml:"seed"`
	Nodes []*Node `yaml:"nodes"`
}

// Node is one step of a graph: an instance of a Kind with parameters and wired inputs.
type Node struct {
	ID     string            `yaml:"id"`
	Kind   string            `yaml:"kind"`
	Params map[string]any    `yaml:"params,omitempty"`
	Inputs map[string]string `yaml:"inputs,omitempty"` // input port -> "nodeID.port"
	Seed   *uint64           `yaml:"seed,omitempty"`   // overrides the graph seed
}

// Add appends a node and returns it. It does not check anything; Validate does.
func (g *Graph) Add(id, kind string, params map[string]any, inputs map[string]string) *Node {
	n := &Node{ID: id, Kind: kind, Params: params, Inputs: inputs}
	g.Nodes = append(g.Nodes, n)
	return n
}

// Node returns the node with that id, nil if absent.
func (g *Graph) Node(id string) *Node {
	if g == nil {
		return nil
	}
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Remove deletes the node with that id and reports whether it was there. Inputs of other
// nodes that referred to it are left dangling (Validate reports them).
func (g *Graph) Remove(id string) bool {
	for i, n := range g.Nodes {
		if n.ID == id {
			g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
			return true
		}
	}
	return false
}

// Clone returns a deep copy of the graph (parameter values are copied as far as they
// are maps and slices).
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, Seed: g.Seed, Nodes: make([]*Node, len(g.Nodes))}
	for i, n := range g.Nodes {
		if n == nil {
			continue
		}
		nn := &Node{ID: n.ID, Kind: n.Kind}
		if n.Params != nil {
			nn.Params = make(map[string]any, len(n.Params))
			for k, v := range n.Params {
				nn.Params[k] = deepCopy(v)
			}
		}
		if n.Inputs != nil {
			nn.Inputs = make(map[string]string, len(n.Inputs))
			for k, v := range n.Inputs {
				nn.Inputs[k] = v
			}
		}
		if n.Seed != nil {
			s := *n.Seed
			nn.Seed = &s
		}
		c.Nodes[i] = nn
	}
	return c
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	case []string:
		return append([]string(nil), x...)
	case []int:
		return append([]int(nil), x...)
	case []float64:
		return append([]float64(nil), x...)
	}
	return v
}

// SplitRef splits an input reference "nodeID.port" at its first dot.
func SplitRef(ref string) (node, port string, err error) {
	i := strings.IndexByte(ref, '.')
	if i <= 0 || i == len(ref)-1 {
		return "", "", fmt.Errorf("bad reference %q: want \"node.port\"", ref)
	}
	return ref[:i], ref[i+1:], nil
}

// EffectiveSeed is the node's own seed if set, else the graph seed.
func (g *Graph) EffectiveSeed(n *Node) uint64 {
	if n.Seed != nil {
		return *n.Seed
	}
	return g.Seed
}

// edges returns, for each node index, the indices of the nodes it reads from (deduped,
// sorted by input port name), ignoring references that do not resolve. ids maps an id to
// its first index.
func (g *Graph) edges() (ids map[string]int, deps [][]int) {
	if g == nil {
		return map[string]int{}, nil
	}
	ids = make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			continue
		}
		if _, dup := ids[n.ID]; !dup {
			ids[n.ID] = i
		}
	}
	deps = make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			continue
		}
		seen := map[int]bool{}
		for _, port := range sortedKeys(n.Inputs) {
			src, _, err := SplitRef(n.Inputs[port])
			if err != nil {
				continue
			}
			j, ok := ids[src]
			if !ok || seen[j] {
				continue
			}
			seen[j] = true
			deps[i] = append(deps[i], j)
		}
	}
	return ids, deps
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// order returns node indices in topological order, ties broken by position, and the
// cycles found (each a list of node indices, first repeated implicitly) when there are any.
func (g *Graph) order() (idx []int, cycles [][]int) {
	if g == nil {
		return nil, nil
	}
	_, deps := g.edges()
	n := len(g.Nodes)
	indeg := make([]int, n)
	users := make([][]int, n)
	for i, ds := range deps {
		for _, j := range ds {
			indeg[i]++
			users[j] = append(users[j], i)
		}
	}
	h := &intHeap{}
	for i := range n {
		if g.Nodes[i] != nil && indeg[i] == 0 {
			*h = append(*h, i)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		i := heap.Pop(h).(int)
		idx = append(idx, i)
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				heap.Push(h, u)
			}
		}
	}
	live := 0
	for _, nd := range g.Nodes {
		if nd != nil {
			live++
		}
	}
	if len(idx) == live {
		return idx, nil
	}
	return idx, findCycles(deps, indeg)
}

// findCycles returns one cycle per strongly connected component that has one, among
// the nodes left with indeg > 0 by Kahn's algorithm. Tarjan's algorithm, iterative.
func findCycles(deps [][]int, indeg []int) [][]int {
	n := len(deps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	counter := 0
	var comps [][]int
	type frame struct{ v, next int }
	for root := range n {
		if indeg[root] == 0 || index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < len(deps[v]) {
				w := deps[v][f.next]
				f.next++
				if indeg[w] == 0 {
					continue
				}
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				comps = append(comps, comp)
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
		}
	}
	var cycles [][]int
	for _, comp := range comps {
		in := map[int]bool{}
		for _, v := range comp {
			in[v] = true
		}
		selfLoop := false
		if len(comp) == 1 {
			for _, w := range deps[comp[0]] {
				if w == comp[0] {
					selfLoop = true
				}
			}
			if !selfLoop {
				continue
			}
		}
		// Walk a cycle inside the component from its lowest index, following
		// dependency edges, until a node repeats.
		start := comp[0]
		for _, v := range comp {
			if v < start {
				start = v
			}
		}
		path := []int{start}
		pos := map[int]int{start: 0}
		v := start
		for {
			next := -1
			for _, w := range deps[v] {
				if in[w] {
					next = w
					break
				}
			}
			if p, seen := pos[next]; seen {
				path = path[p:]
				break
			}
			pos[next] = len(path)
			path = append(path, next)
			v = next
		}
		// path follows "reads from" edges; reverse it so it reads in data-flow order.
		// Reversed, it ends with start: rotate start to the front.
		rev := make([]int, 0, len(path))
		rev = append(rev, path[0])
		for i := len(path) - 1; i > 0; i-- {
			rev = append(rev, path[i])
		}
		cycles = append(cycles, rev)
	}
	return cycles
}

// CycleError is returned by Order and Downstream on a cyclic graph.
type CycleError struct {
	Cycles [][]string // each cycle as node ids in data-flow order; the first id closes it
}

func (e *CycleError) Error() string {
	parts := make([]string, len(e.Cycles))
	for i, c := range e.Cycles {
		parts[i] = strings.Join(append(append([]string(nil), c...), c[0]), " -> ")
	}
	return "dag: cycle: " + strings.Join(parts, "; ")
}

func (g *Graph) cycleError(cycles [][]int) *CycleError {
	e := &CycleError{}
	for _, c := range cycles {
		ids := make([]string, len(c))
		for i, j := range c {
			ids[i] = g.Nodes[j].ID
		}
		e.Cycles = append(e.Cycles, ids)
	}
	return e
}

// Order is a topological order (ties broken by position in g.Nodes); errors on cycles.
// References to unknown nodes are ignored here (Validate reports them).
func (g *Graph) Order() ([]*Node, error) {
	idx, cycles := g.order()
	if len(cycles) > 0 {
		return nil, g.cycleError(cycles)
	}
	out := make([]*Node, len(idx))
	for i, j := range idx {
		out[i] = g.Nodes[j]
	}
	return out, nil
}

// Downstream returns the ids of the nodes that depend (transitively) on the given ones,
// in topological order, excluding them.
func (g *Graph) Downstream(ids ...string) ([]string, error) {
	return g.reach(ids, true)
}

// Upstream returns the ids of the nodes the given ones depend on (transitively), in
// topological order, excluding them.
func (g *Graph) Upstream(ids ...string) ([]string, error) {
	return g.reach(ids, false)
}

func (g *Graph) reach(ids []string, down bool) ([]string, error) {
	index, deps := g.edges()
	mark := make([]bool, len(g.Nodes))
	given := make([]bool, len(g.Nodes))
	for _, id := range ids {
		i, ok := index[id]
		if !ok {
			return nil, fmt.Errorf("dag: unknown node %q", id)
		}
		given[i] = true
	}
	idx, cycles := g.order()
	if len(cycles) > 0 {
		return nil, g.cycleError(cycles)
	}
	if down {
		for _, i := range idx {
			for _, j := range deps[i] {
				if given[j] || mark[j] {
					mark[i] = true
				}
			}
		}
	} else {
		for k := len(idx) - 1; k >= 0; k-- {
			i := idx[k]
			if given[i] || mark[i] {
				for _, j := range deps[i] {
					mark[j] = true
				}
			}
		}
	}
	var out []string
	for _, i := range idx {
		if mark[i] && !given[i] {
			out = append(out, g.Nodes[i].ID)
		}
	}
	return out, nil
}
