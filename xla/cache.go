package xla

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Cache holds compiled executables keyed by function name and backend; each one compiles
// once per distinct set of input shapes (GoMLX's Exec keeps that per-shape table). A
// sampler asks the cache for its step each time and the step is compiled once.
//
// The name stands for the function: two different functions (or closures over different
// parameters that change the graph) must use different names.
type Cache struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	hits    atomic.Int64
}

type cacheKey struct {
	name    string
	backend backends.Backend
}

type cacheEntry struct {
	exec     *graph.Exec
	fnType   reflect.Type
	compiles atomic.Int64
}

// DefaultCache is the process-wide cache.
var DefaultCache = NewCache()

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{entries: map[cacheKey]*cacheEntry{}} }

// maxShapesPerFunction bounds how many shape variants of one function stay compiled.
const maxShapesPerFunction = 64

// Exec returns the executable for (name, backend), creating it from graphFn on first use.
// graphFn takes the forms graph.NewExecAny accepts. Asking again under the same name with
// a function of another type is an error: it is almost surely a name clash.
func (c *Cache) Exec(backend backends.Backend, name string, graphFn any) (*graph.Exec, error) {
	key := cacheKey{name, backend}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		if t := reflect.TypeOf(graphFn); t != e.fnType {
			return nil, fmt.Errorf("executable cache: %q was first registered with a %s, now asked for with a %s", name, e.fnType, t)
		}
		c.hits.Add(1)
		return e.exec, nil
	}
	e := &cacheEntry{fnType: reflect.TypeOf(graphFn)}
	if e.fnType == nil || e.fnType.Kind() != reflect.Func {
		return nil, fmt.Errorf("executable cache: %q: graph function is a %T, not a function", name, graphFn)
	}
	// GoMLX calls the graph function once per new input shapes: count those traces.
	fn := reflect.ValueOf(graphFn)
	counted := reflect.MakeFunc(e.fnType, func(args []reflect.Value) []reflect.Value {
		e.compiles.Add(1)
		return fn.Call(args)
	})
	exec, err := graph.NewExecAny(backend, counted.Interface())
	if err != nil {
		return nil, fmt.Errorf("executable cache: %q: %w", name, err)
	}
	e.exec = exec.WithName(name).SetMaxCache(maxShapesPerFunction)
	c.entries[key] = e
	return e.exec, nil
}

// CacheStats counts cache use.
type CacheStats struct {
	Functions int   // distinct (name, backend) entries
	Compiles  int64 // graphs built and compiled, all shapes together
	Hits      int64 // Exec calls that found their entry
}

// Stats reports how the cache was used.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := CacheStats{Functions: len(c.entries), Hits: c.hits.Load()}
	for _, e := range c.entries {
		s.Compiles += e.compiles.Load()
	}
	return s
}

// Forget drops every executable compiled for backend (e.g. before finalizing it).
func (c *Cache) Forget(backend backends.Backend) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if k.backend == backend {
			e.exec.Finalize()
			delete(c.entries, k)
		}
	}
}
