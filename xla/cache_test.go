package xla

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestCacheCompilesOncePerShape(t *testing.T) {
	b := mustBackend(t)
	c := NewCache()
	double := func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 2) }
	call := func(name string, n int) {
		t.Helper()
		e, err := c.Exec(b, name, double)
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float32](e.MustExec1(tensors.FromFlatDataAndDimensions(make([]float32, n), n)))
		if len(got) != n {
			t.Fatalf("got %d values, want %d", len(got), n)
		}
	}
	for range 5 {
		call("double", 3)
	}
	if s := c.Stats(); s.Compiles != 1 || s.Functions != 1 || s.Hits != 4 {
		t.Fatalf("after 5 same-shape calls: %+v, want 1 compile, 1 function, 4 hits", s)
	}
	call("double", 4) // new shape
	call("double", 3) // old shape again
	if s := c.Stats(); s.Compiles != 2 {
		t.Fatalf("after a second shape: %d compiles, want 2", s.Compiles)
	}
	call("double-again", 3) // another name is another function
	b2 := mustBackend(t)    // another backend instance is another entry
	if _, err := c.Exec(b2, "double", double); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Functions != 3 || s.Compiles != 3 {
		t.Fatalf("with a second name and backend: %+v, want 3 functions, 3 compiles", s)
	}
	if _, err := c.Exec(b, "double", func(x, y *graph.Node) *graph.Node { return x }); err == nil {
		t.Fatal("same name with another function type was accepted")
	}
	c.Forget(b2)
	if s := c.Stats(); s.Functions != 2 {
		t.Fatalf("after Forget: %d functions, want 2", s.Functions)
	}
}
