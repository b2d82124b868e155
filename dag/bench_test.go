package dag

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

const benchChain = 200

// step is the trivial work of each node, called directly by the baseline.
//
//go:noinline
func step(x int) int { return x + 1 }

func benchRegistry() *Registry {
	r := NewRegistry()
	r.MustRegister(Kind{Name: "start", Version: "1", Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error { c.Set("out", 0); return nil }})
	r.MustRegister(Kind{Name: "step", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "int"}},
		Outputs: []Port{{Name: "out", Type: "int"}},
		Params:  []Param{{Name: "i", Type: "int"}},
		Run: func(c *Call) error {
			c.Set("out", step(c.In("x").(int)))
			return nil
		}})
	return r
}

func benchGraph() *Graph {
	g := &Graph{Name: "bench"}
	g.Add("n0", "start", nil, nil)
	for i := 1; i < benchChain; i++ {
		g.Add(fmt.Sprint("n", i), "step", map[string]any{"i": i}, map[string]string{"x": fmt.Sprint("n", i-1, ".out")})
	}
	return g
}

func checkBench(b *testing.B, res *Result) {
	if v, _ := res.Value(fmt.Sprint("n", benchChain-1, ".out")); v != benchChain-1 {
		b.Fatalf("result %v", v)
	}
}

// BenchmarkChainDirect is the baseline: the same work as plain function calls.
func BenchmarkChainDirect(b *testing.B) {
	for b.Loop() {
		x := 0
		for i := 1; i < benchChain; i++ {
			x = step(x)
		}
		if x != benchChain-1 {
			b.Fatal(x)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchChain), "ns/node")
}

// BenchmarkChainRunner is the engine without a cache: validation, ordering, scheduling,
// one goroutine and a Call per node.
func BenchmarkChainRunner(b *testing.B) {
	r := &Runner{Registry: benchRegistry()}
	g := benchGraph()
	for b.Loop() {
		res, err := r.Run(context.Background(), g)
		if err != nil {
			b.Fatal(err)
		}
		checkBench(b, res)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchChain), "ns/node")
}

// BenchmarkChainCold runs with an empty cache each time: key, encode, fsync'd commit.
func BenchmarkChainCold(b *testing.B) {
	g := benchGraph()
	reg := benchRegistry()
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		b.StopTimer()
		c, err := OpenCache(filepath.Join(dir, fmt.Sprint(i)))
		i++
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := (&Runner{Registry: reg, Cache: c}).Run(context.Background(), g)
		if err != nil {
			b.Fatal(err)
		}
		checkBench(b, res)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchChain), "ns/node")
}

// BenchmarkChainCached reruns a fully cached graph: one lookup per node.
func BenchmarkChainCached(b *testing.B) {
	r, g := cachedBench(b)
	for b.Loop() {
		res, err := r.Run(context.Background(), g)
		if err != nil {
			b.Fatal(err)
		}
		if res.Status["n1"] != StatusCached {
			b.Fatal("not cached")
		}
		checkBench(b, res)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchChain), "ns/node")
}

// BenchmarkExplainCached is Explain on the fully cached graph.
func BenchmarkExplainCached(b *testing.B) {
	r, g := cachedBench(b)
	for b.Loop() {
		if _, err := r.Explain(context.Background(), g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchChain), "ns/node")
}

// cachedBench is a runner whose cache holds every node of the bench graph.
func cachedBench(b *testing.B) (*Runner, *Graph) {
	c, err := OpenCache(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	r := &Runner{Registry: benchRegistry(), Cache: c}
	g := benchGraph()
	if _, err := r.Run(context.Background(), g); err != nil {
		b.Fatal(err)
	}
	return r, g
}
