package dag

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// Call is what a node's Run gets: its inputs, parameters, seed and a place to put its
// outputs. Its methods may be called from several goroutines. Misuse (an undeclared port
// or param, a value of the wrong type) does not panic: it is recorded and fails the node
// once Run returns, with a message that names the port or param.
type Call struct {
	ctx    context.Context
	node   *Node
	kind   *Kind
	inputs map[string]any
	params map[string]any
	seed   uint64

	progress func(done, total int, msg string)
	scratch  func() (string, error)
	reg      *Registry

	mu      sync.Mutex
	outputs map[string]any
	misuse  []string
}

// Context is cancelled when the run is cancelled; long nodes should watch it.
func (c *Call) Context() context.Context { return c.ctx }

// Node is the graph node being run.
func (c *Call) Node() *Node { return c.node }

// Kind is the node's kind.
func (c *Call) Kind() *Kind { return c.kind }

func (c *Call) fail(format string, args ...any) {
	c.mu.Lock()
	c.misuse = append(c.misuse, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// In returns the value on an input port: nil for an unconnected optional input.
func (c *Call) In(port string) any {
	if c.kind.input(port) == nil {
		c.fail("In(%q): kind %q has no input %q", port, c.kind.Name, port)
		return nil
	}
	return c.inputs[port]
}

// Has reports whether an input port is connected.
func (c *Call) Has(port string) bool {
	_, ok := c.node.Inputs[port]
	return ok
}

// Param returns a parameter with defaults applied; normalised: int, float64, bool,
// string, []string, []int, []float64, map[string]any. nil when absent with no default.
func (c *Call) Param(name string) any {
	if c.kind.param(name) == nil {
		c.fail("Param(%q): kind %q has no param %q", name, c.kind.Name, name)
		return nil
	}
	return c.params[name]
}

// Params returns all parameters with defaults applied (a copy).
func (c *Call) Params() map[string]any {
	out := make(map[string]any, len(c.params))
	for k, v := range c.params {
		out[k] = deepCopy(v)
	}
	return out
}

func typedParam[T any](c *Call, name, want string) T {
	var zero T
	v := c.Param(name)
	if v == nil {
		return zero
	}
	t, ok := v.(T)
	if !ok {
		c.fail("param %q is %s, read as %s", name, describe(v), want)
		return zero
	}
	return t
}

// String returns a "string" parameter ("" when absent).
func (c *Call) String(name string) string { return typedParam[string](c, name, "string") }

// Int returns an "int" parameter (0 when absent).
func (c *Call) Int(name string) int { return typedParam[int](c, name, "int") }

// Float returns a "float" parameter (0 when absent).
func (c *Call) Float(name string) float64 { return typedParam[float64](c, name, "float") }

// Bool returns a "bool" parameter (false when absent).
func (c *Call) Bool(name string) bool { return typedParam[bool](c, name, "bool") }

// Seed is the effective seed: the node's own, else the graph's.
func (c *Call) Seed() uint64 { return c.seed }

// Set sets an output. Every declared output must be set before Run returns nil.
func (c *Call) Set(port string, v any) {
	p := c.kind.output(port)
	if p == nil {
		c.fail("Set(%q): kind %q has no output %q", port, c.kind.Name, port)
		return
	}
	if codec, _ := c.reg.Type(p.Type); codec != nil {
		if vc, ok := codec.(ValueChecker); ok {
			if err := vc.CheckValue(v); err != nil {
				c.fail("output %q (type %q): %v", port, p.Type, err)
				return
			}
		}
	}
	c.mu.Lock()
	c.outputs[port] = v
	c.mu.Unlock()
}

// Progress reports progress as a "progress" event.
func (c *Call) Progress(done, total int, msg string) {
	if c.progress != nil {
		c.progress(done, total, msg)
	}
}

// ScratchDir is a directory that survives a killed run, keyed by this node's cache key, for
// partial results a long node can resume from; it is removed once the node's result is committed.
// For uncacheable nodes it is a fresh temp dir removed after the node.
func (c *Call) ScratchDir() (string, error) {
	return c.scratch()
}

// scratchState makes the scratch directory on first use.
type scratchState struct {
	mu        sync.Mutex
	dir       string
	persist   string // the keyed directory, "" for a temp one
	tempRoot  string // where temp dirs go, "" for os.TempDir
	tempNamed string // prefix of temp dir names
}

func (s *scratchState) get() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		return s.dir, nil
	}
	if s.persist != "" {
		if err := os.MkdirAll(s.persist, 0o755); err != nil {
			return "", fmt.Errorf("scratch dir: %w", err)
		}
		s.dir = s.persist
		return s.dir, nil
	}
	d, err := os.MkdirTemp(s.tempRoot, s.tempNamed)
	if err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	s.dir = d
	return d, nil
}

// cleanup removes a temp scratch dir, or the keyed one when committed is true.
func (s *scratchState) cleanup(committed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.persist != "" {
		if committed {
			os.RemoveAll(s.persist)
		}
		return
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}
