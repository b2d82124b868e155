package dag

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// EventType says what happened to a node.
type EventType string

// Event types, in the order a node meets them.
const (
	EventQueued   EventType = "queued"
	EventStart    EventType = "start"
	EventProgress EventType = "progress"
	EventCached   EventType = "cached"
	EventDone     EventType = "done"
	EventFailed   EventType = "failed"
	EventSkipped  EventType = "skipped"
	// EventWarning is a problem the run works around, such as a damaged cache entry that
	// it recomputes (Message says which, Err is the cause); the node goes on.
	EventWarning EventType = "warning"
)

// Event reports progress of a run to Runner.Events.
type Event struct {
	Type        EventType
	Node, Kind  string
	Done, Total int
	Message     string
	Err         error
	Elapsed     time.Duration
}

// Runner runs graphs. Set the fields, then call Run; a Runner may run several graphs,
// one after the other or at once.
type Runner struct {
	Registry *Registry
	Cache    *Cache      // nil: nothing is cached on disk
	Parallel int         // nodes run at once; 0 = runtime.GOMAXPROCS(0)
	Events   func(Event) // may be nil; calls are serialised
	Force    []string    // node ids to run even if cached
}

// NodeError is a node's failure: its id, kind and error.
type NodeError struct {
	Node, Kind string
	Err        error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %q (kind %q): %v", e.Node, e.Kind, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// Status is what happened to a node in a run.
type Status string

// Statuses.
const (
	StatusRan     Status = "ran"
	StatusCached  Status = "cached"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Result is what a run produced. Values holds the outputs of the nodes that ran or were
// read from the cache.
type Result struct {
	Values  map[string]map[string]any // node id -> output port -> value
	Status  map[string]Status
	Keys    map[string]string // node id -> cache key (hex) when it has one
	Elapsed map[string]time.Duration
	Errors  map[string]error // node id -> error, for failed nodes
}

// Value returns an output by reference "node.port".
func (r *Result) Value(ref string) (any, error) {
	node, port, err := SplitRef(ref)
	if err != nil {
		return nil, err
	}
	outs, ok := r.Values[node]
	if !ok {
		if st, ok := r.Status[node]; ok {
			return nil, fmt.Errorf("dag: node %q has no values (%s)", node, st)
		}
		return nil, fmt.Errorf("dag: no node %q in the result", node)
	}
	v, ok := outs[port]
	if !ok {
		return nil, fmt.Errorf("dag: node %q has no output %q", node, port)
	}
	return v, nil
}

// emitter serialises event calls.
type emitter struct {
	mu sync.Mutex
	f  func(Event)
}

func (e *emitter) emit(ev Event) {
	if e.f == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.f(ev)
}

// plan is a validated graph ready to run: nodes in topological order with their kinds
// and wiring as indices into that order.
type plan struct {
	g      *Graph
	nodes  []*Node
	kinds  []*Kind
	deps   [][]int // distinct upstream positions
	users  [][]int // distinct downstream positions
	inputs []map[string]inRef
	forced []bool
}

type inRef struct {
	src  int // position in plan order
	port string
}

func (r *Runner) plan(g *Graph) (*plan, error) {
	if r.Registry == nil {
		return nil, errors.New("dag: Runner.Registry is nil")
	}
	if err := r.Registry.Validate(g); err != nil {
		return nil, err
	}
	order, err := g.Order()
	if err != nil {
		return nil, err
	}
	p := &plan{g: g, nodes: order}
	pos := make(map[string]int, len(order))
	for i, n := range order {
		pos[n.ID] = i
	}
	forced := map[string]bool{}
	for _, id := range r.Force {
		if _, ok := pos[id]; !ok {
			return nil, fmt.Errorf("dag: Runner.Force: unknown node %q", id)
		}
		forced[id] = true
	}
	n := len(order)
	p.kinds = make([]*Kind, n)
	p.deps = make([][]int, n)
	p.users = make([][]int, n)
	p.inputs = make([]map[string]inRef, n)
	p.forced = make([]bool, n)
	for i, nd := range order {
		p.kinds[i], _ = r.Registry.Kind(nd.Kind)
		p.forced[i] = forced[nd.ID]
		p.inputs[i] = make(map[string]inRef, len(nd.Inputs))
		seen := map[int]bool{}
		for _, port := range sortedKeys(nd.Inputs) {
			src, out, _ := SplitRef(nd.Inputs[port])
			j := pos[src]
			p.inputs[i][port] = inRef{j, out}
			if !seen[j] {
				seen[j] = true
				p.deps[i] = append(p.deps[i], j)
				p.users[j] = append(p.users[j], i)
			}
		}
	}
	return p, nil
}

// nodeState is what a run knows about one node.
type nodeState struct {
	status  Status
	values  map[string]any
	hashes  map[string]string // output port -> sha256 of encoded bytes, when known
	key     string
	err     error
	elapsed time.Duration
}

// Run validates g, then runs it in topological order, independent nodes concurrently.
// A node whose cache key is in the cache is not run: its outputs are read back. A failed
// node's dependents are skipped; independent nodes still finish; Run then returns a
// *NodeError for the first failure (node id, kind, the error). When ctx is cancelled no
// new node starts, running nodes see their Context cancelled, nodes not run are
// "skipped", and Run returns an error that wraps ctx.Err() (a *NodeError if a node
// failed). The Result is returned (partial) even with an error, except for validation
// errors (*ValidationError), where it is nil.
func (r *Runner) Run(ctx context.Context, g *Graph) (*Result, error) {
	p, err := r.plan(g)
	if err != nil {
		return nil, err
	}
	em := &emitter{f: r.Events}
	n := len(p.nodes)
	states := make([]*nodeState, n)
	for i := range states {
		states[i] = &nodeState{}
	}
	for i, nd := range p.nodes {
		em.emit(Event{Type: EventQueued, Node: nd.ID, Kind: p.kinds[i].Name})
	}
	parallel := r.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	remaining := make([]int, n)
	blocked := make([]string, n) // the failed/skipped upstream that blocks a node
	ready := &intHeap{}
	for i := range p.nodes {
		remaining[i] = len(p.deps[i])
		if remaining[i] == 0 {
			*ready = append(*ready, i)
		}
	}
	heap.Init(ready)
	finished := make([]bool, n)
	var firstErr *NodeError
	doneCh := make(chan int)
	running := 0

	var finish func(i int)
	finish = func(i int) {
		finished[i] = true
		st := states[i]
		ok := st.status == StatusRan || st.status == StatusCached
		for _, u := range p.users[i] {
			if !ok && blocked[u] == "" {
				blocked[u] = p.nodes[i].ID
			}
			remaining[u]--
			if remaining[u] > 0 {
				continue
			}
			if blocked[u] != "" {
				states[u].status = StatusSkipped
				msg := fmt.Sprintf("upstream %q %s", blocked[u], states[indexOf(p, blocked[u])].status)
				em.emit(Event{Type: EventSkipped, Node: p.nodes[u].ID, Kind: p.kinds[u].Name, Message: msg})
				finish(u)
				continue
			}
			heap.Push(ready, u)
		}
	}

	for {
		for running < parallel && ready.Len() > 0 && ctx.Err() == nil {
			i := heap.Pop(ready).(int)
			running++
			go func() {
				r.runNode(ctx, p, i, states, em)
				doneCh <- i
			}()
		}
		if running == 0 {
			break
		}
		i := <-doneCh
		running--
		if states[i].status == StatusFailed && firstErr == nil {
			firstErr = &NodeError{Node: p.nodes[i].ID, Kind: p.kinds[i].Name, Err: states[i].err}
		}
		finish(i)
	}

	res := &Result{
		Values:  map[string]map[string]any{},
		Status:  map[string]Status{},
		Keys:    map[string]string{},
		Elapsed: map[string]time.Duration{},
		Errors:  map[string]error{},
	}
	for i, nd := range p.nodes {
		st := states[i]
		if !finished[i] {
			st.status = StatusSkipped
			em.emit(Event{Type: EventSkipped, Node: nd.ID, Kind: p.kinds[i].Name, Message: "run cancelled"})
		}
		res.Status[nd.ID] = st.status
		if st.values != nil {
			res.Values[nd.ID] = st.values
		}
		if st.key != "" {
			res.Keys[nd.ID] = st.key
		}
		if st.err != nil {
			res.Errors[nd.ID] = st.err
		}
		res.Elapsed[nd.ID] = st.elapsed
	}
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("dag: run cancelled: %w", err)
	}
	return res, nil
}

func indexOf(p *plan, id string) int {
	for i, n := range p.nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// nodeKey computes a node's cache key components from its upstream hashes. It returns
// ok=false with a reason when the node cannot be cached.
type keyInfo struct {
	comps    *keyComponents
	key      string
	why      string   // why not cacheable ("" if cacheable)
	unknown  []string // input ports whose upstream hash is not known (yet)
	unknownF []string // the upstream node of each unknown port
}

func (r *Runner) keyFor(p *plan, i int, hashOf func(src int, port string) (string, bool), memOnly func(src int, port string) bool) keyInfo {
	nd, k := p.nodes[i], p.kinds[i]
	var ki keyInfo
	comps := &keyComponents{
		Kind:    k.Name,
		Version: k.Version,
		Code:    k.CodeVersion,
		Params:  effectiveParams(k, nd),
		Seed:    p.g.EffectiveSeed(nd),
		Inputs:  map[string]string{},
	}
	ki.comps = comps
	if k.NoCache {
		ki.why = fmt.Sprintf("not cacheable (kind %q always runs)", k.Name)
	} else if k.Fingerprint != nil {
		fp, err := k.Fingerprint(comps.Params)
		if err != nil {
			ki.why = fmt.Sprintf("not cacheable (what it reads cannot be fingerprinted: %v)", err)
		}
		comps.External = fp
	}
	for _, o := range k.Outputs {
		if c, _ := r.Registry.Type(o.Type); c == nil && ki.why == "" {
			ki.why = fmt.Sprintf("not cacheable (output %q has memory-only type %q)", o.Name, o.Type)
		}
	}
	for _, port := range sortedKeys(p.inputs[i]) {
		in := p.inputs[i][port]
		if memOnly(in.src, in.port) {
			if ki.why == "" {
				ki.why = fmt.Sprintf("not cacheable (input %q comes from memory-only output %s.%s)", port, p.nodes[in.src].ID, in.port)
			}
			continue
		}
		h, ok := hashOf(in.src, in.port)
		if !ok {
			ki.unknown = append(ki.unknown, port)
			ki.unknownF = append(ki.unknownF, p.nodes[in.src].ID)
			continue
		}
		comps.Inputs[port] = h
	}
	if ki.why == "" && len(ki.unknown) == 0 {
		key, err := comps.key()
		if err != nil {
			ki.why = "not cacheable (" + err.Error() + ")"
		} else {
			ki.key = key
		}
	}
	return ki
}

func (r *Runner) memOnly(p *plan) func(src int, port string) bool {
	return func(src int, port string) bool {
		o := p.kinds[src].output(port)
		if o == nil {
			return true
		}
		c, _ := r.Registry.Type(o.Type)
		return c == nil
	}
}

// runNode runs (or reads back) node i and fills states[i]. Upstream states are complete.
func (r *Runner) runNode(ctx context.Context, p *plan, i int, states []*nodeState, em *emitter) {
	nd, k := p.nodes[i], p.kinds[i]
	st := states[i]
	start := time.Now()
	defer func() { st.elapsed = time.Since(start) }()

	inputs := make(map[string]any, len(p.inputs[i]))
	for port, in := range p.inputs[i] {
		inputs[port] = states[in.src].values[in.port]
	}
	var ki keyInfo
	if r.Cache != nil {
		ki = r.keyFor(p, i, func(src int, port string) (string, bool) {
			h, ok := states[src].hashes[port]
			return h, ok
		}, r.memOnly(p))
	} else {
		ki = keyInfo{comps: &keyComponents{Params: effectiveParams(k, nd)}, why: "no cache"}
	}
	cacheable := ki.key != ""
	st.key = ki.key
	replace := p.forced[i]
	if cacheable && !p.forced[i] {
		values, hashes, err := r.Cache.lookup(ki.key, k, r.Registry)
		if err == nil {
			st.values, st.hashes, st.status = values, hashes, StatusCached
			r.Cache.writeLast(p.g.Name, nd.ID, ki.key, ki.comps)
			em.emit(Event{Type: EventCached, Node: nd.ID, Kind: k.Name, Message: ki.key, Elapsed: time.Since(start)})
			return
		}
		if !errors.Is(err, errNotCached) {
			// Damaged (or unreadable): run the node and put a whole entry in its place.
			replace = true
			msg := err.Error()
			var de *damageError
			if errors.As(err, &de) {
				msg = de.brief()
			}
			em.emit(Event{Type: EventWarning, Node: nd.ID, Kind: k.Name, Message: msg + ": recomputing", Err: err})
		}
	}

	sc := &scratchState{}
	switch {
	case cacheable:
		sc.persist = r.Cache.scratchDir(ki.key)
	case r.Cache != nil:
		sc.tempRoot = r.Cache.tmpDir()
		sc.tempNamed = tempPrefix("scratch") // in the shared tmp/: named after machine and process
	default:
		sc.tempNamed = "dag-scratch-"
	}
	call := &Call{
		ctx:     ctx,
		node:    nd,
		kind:    k,
		inputs:  inputs,
		params:  ki.comps.Params,
		seed:    p.g.EffectiveSeed(nd),
		reg:     r.Registry,
		outputs: make(map[string]any, len(k.Outputs)),
		scratch: sc.get,
		progress: func(done, total int, msg string) {
			em.emit(Event{Type: EventProgress, Node: nd.ID, Kind: k.Name, Done: done, Total: total, Message: msg, Elapsed: time.Since(start)})
		},
	}
	em.emit(Event{Type: EventStart, Node: nd.ID, Kind: k.Name})
	err := safeRun(k.Run, call)
	call.mu.Lock()
	if err == nil && len(call.misuse) > 0 {
		err = errors.New(strings.Join(call.misuse, "; "))
	}
	if err == nil {
		var missing []string
		for _, o := range k.Outputs {
			if _, ok := call.outputs[o.Name]; !ok {
				missing = append(missing, o.Name)
			}
		}
		if len(missing) > 0 {
			err = fmt.Errorf("output(s) %s not set", strings.Join(missing, ", "))
		}
	}
	outputs := call.outputs
	call.mu.Unlock()

	if err == nil {
		if cacheable {
			var hashes map[string]string
			hashes, err = r.Cache.commit(ki.key, nd.ID, ki.comps, k, r.Registry, outputs, replace)
			if err == nil {
				st.hashes = hashes
				r.Cache.writeLast(p.g.Name, nd.ID, ki.key, ki.comps)
			}
		} else if r.Cache != nil {
			// Hash what can be hashed so that dependents can still be cached.
			st.hashes = map[string]string{}
			for _, o := range k.Outputs {
				if c, _ := r.Registry.Type(o.Type); c != nil {
					h, herr := hashValue(c, outputs[o.Name])
					if herr != nil {
						err = fmt.Errorf("output %q: encoding: %w", o.Name, herr)
						break
					}
					st.hashes[o.Name] = h
				}
			}
		}
	}
	sc.cleanup(err == nil && cacheable)
	if err != nil {
		st.status, st.err, st.hashes = StatusFailed, err, nil
		em.emit(Event{Type: EventFailed, Node: nd.ID, Kind: k.Name, Err: err, Message: err.Error(), Elapsed: time.Since(start)})
		return
	}
	st.values, st.status = outputs, StatusRan
	em.emit(Event{Type: EventDone, Node: nd.ID, Kind: k.Name, Message: ki.key, Elapsed: time.Since(start)})
}

// PanicError is a panic inside a node's Run, recovered.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func safeRun(run func(*Call) error, c *Call) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return run(c)
}
