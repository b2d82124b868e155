package dag

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// counts records how many times each node's Run was called.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) inc(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[id]++
}

func (c *counts) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *counts) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// ran returns the ids that ran since the last reset, sorted.
func (c *counts) ran() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, n := range c.m {
		if n > 0 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// handle is a memory-only value.
type handle struct{ n int }

// testRegistry has small arithmetic kinds that count their runs.
func testRegistry(t testing.TB, cnt *counts) *Registry {
	t.Helper()
	r := NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.RegisterType("handle", nil))
	must(r.Register(Kind{
		Name: "const", Version: "1", Doc: "an integer constant",
		Outputs: []Port{{Name: "out", Type: "int"}},
		Params:  []Param{{Name: "value", Type: "int", Required: true}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("out", c.Int("value"))
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "add", Version: "1",
		Inputs:  []Port{{Name: "a", Type: "int"}, {Name: "b", Type: "int", Optional: true}},
		Outputs: []Port{{Name: "out", Type: "int"}},
		Params:  []Param{{Name: "plus", Type: "int", Default: 0}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			s := c.In("a").(int) + c.Int("plus")
			if c.Has("b") {
				s += c.In("b").(int)
			}
			c.Set("out", s)
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "scale", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "int"}},
		Outputs: []Port{{Name: "out", Type: "float"}},
		Params: []Param{
			{Name: "factor", Type: "float", Default: 1.0},
			{Name: "steps", Type: "int", Default: 100},
			{Name: "label", Type: "string"},
			{Name: "tags", Type: "strings"},
			{Name: "on", Type: "bool", Default: true},
		},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("out", float64(c.In("x").(int))*c.Float("factor"))
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "show", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "float"}},
		Outputs: []Port{{Name: "text", Type: "string"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("text", fmt.Sprintf("%.2f", c.In("x").(float64)))
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "open", Version: "1", Doc: "memory-only output",
		Inputs:  []Port{{Name: "x", Type: "int"}},
		Outputs: []Port{{Name: "h", Type: "handle"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("h", &handle{c.In("x").(int)})
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "read", Version: "1",
		Inputs:  []Port{{Name: "h", Type: "handle"}},
		Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("out", c.In("h").(*handle).n)
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "touch", Version: "1", NoCache: true, Doc: "side effect",
		Inputs:  []Port{{Name: "x", Type: "any", Optional: true}},
		Outputs: []Port{{Name: "out", Type: "int"}},
		Params:  []Param{{Name: "value", Type: "int"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			c.Set("out", c.Int("value"))
			return nil
		},
	}))
	must(r.Register(Kind{
		Name: "fail", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "int", Optional: true}},
		Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			return errors.New("boom")
		},
	}))
	must(r.Register(Kind{
		Name: "panic", Version: "1",
		Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			cnt.inc(c.Node().ID)
			var m map[string]int
			m["x"] = 1 // nil map write: a runtime panic
			return nil
		},
	}))
	return r
}

// chain: a(const) -> b(add) -> c(scale) -> d(show), and an independent e(const).
func chainGraph() *Graph {
	g := &Graph{Name: "chain", Seed: 7}
	g.Add("a", "const", map[string]any{"value": 2}, nil)
	g.Add("b", "add", map[string]any{"plus": 1}, map[string]string{"a": "a.out"})
	g.Add("c", "scale", map[string]any{"factor": 2.5, "steps": 100}, map[string]string{"x": "b.out"})
	g.Add("d", "show", nil, map[string]string{"x": "c.out"})
	g.Add("e", "const", map[string]any{"value": 9}, nil)
	return g
}

func mustRun(t *testing.T, r *Runner, g *Graph) *Result {
	t.Helper()
	res, err := r.Run(context.Background(), g)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func statuses(res *Result) string {
	ids := sortedKeys(res.Status)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id + "=" + string(res.Status[id])
	}
	return strings.Join(parts, " ")
}

// withScaleVersion is a copy of reg (the test kinds) with kind "scale" at another version.
func withScaleVersion(reg *Registry, version string) *Registry {
	return withScale(reg, func(k *Kind) { k.Version = version })
}

// withScale is a copy of reg (the test kinds) with kind "scale" changed by edit.
func withScale(reg *Registry, edit func(*Kind)) *Registry {
	reg2 := NewRegistry()
	reg2.RegisterType("handle", nil)
	for _, name := range reg.Kinds() {
		k, _ := reg.Kind(name)
		kk := *k
		if name == "scale" {
			edit(&kk)
		}
		reg2.MustRegister(kk)
	}
	return reg2
}
