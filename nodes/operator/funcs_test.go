package operator

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// pool2 is a 2×2 average-pooling downsampler written as graph functions, as a notebook
// cell would write it.
func pool2(adjoint, project bool) Func {
	down := func(x *graph.Node) *graph.Node {
		d := x.Shape().Dimensions
		return graph.ReduceMean(graph.Reshape(x, d[0], d[1], d[2]/2, 2, d[3]/2, 2), 3, 5)
	}
	up := func(y *graph.Node) *graph.Node { // each value copied into its 2×2 block
		d := y.Shape().Dimensions
		b := graph.BroadcastToDims(graph.Reshape(y, d[0], d[1], d[2], 1, d[3], 1), d[0], d[1], d[2], 2, d[3], 2)
		return graph.Reshape(b, d[0], d[1], 2*d[2], 2*d[3])
	}
	f := Func{Name: "pool2", Apply: down, Shape: func(x shapes.Shape) (shapes.Shape, error) {
		d := x.Dimensions
		return shapes.Make(x.DType, d[0], d[1], d[2]/2, d[3]/2), nil
	}}
	if adjoint {
		f.Adjoint = func(y *graph.Node) *graph.Node { return graph.MulScalar(up(y), 0.25) }
	}
	if project {
		f.Project = func(x, y *graph.Node) *graph.Node { return graph.Add(x, up(graph.Sub(y, down(x)))) }
	}
	return f
}

// FromFunc gives exactly the interfaces its functions allow, computes what they compute
// (here the same as NewAvgPoolSR(2)), and its adjoint and projection keep their promises.
func TestFromFunc(t *testing.T) {
	for _, c := range []struct{ adjoint, project bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		op, err := FromFunc(pool2(c.adjoint, c.project))
		if err != nil {
			t.Fatal(err)
		}
		_, isLinear := op.(Linear)
		_, isProjector := op.(Projector)
		if isLinear != c.adjoint || isProjector != c.project {
			t.Errorf("adjoint %v, project %v: Linear %v, Projector %v", c.adjoint, c.project, isLinear, isProjector)
		}
		if op.Name() != "pool2" {
			t.Errorf("name %q", op.Name())
		}
	}
	op, _ := FromFunc(pool2(true, true))
	if got := measShape(t, op, 2, 1, 32, 32); got[2] != 16 || got[3] != 16 {
		t.Errorf("measurement shape %v, want [2 1 16 16]", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x, xv := randTensor(rng, 2, 1, 32, 32)
	y, yv := randTensor(rng, 2, 1, 16, 16)
	ref, err := NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, func(x, y *graph.Node) []*graph.Node {
		p := op.(Projector).Project(x, y)
		return []*graph.Node{op.Apply(x), ref.Apply(x), op.(Linear).Adjoint(y), op.Apply(p)}
	}, x, y)
	if d := maxDiff(out[0], out[1]); d > 1e-12 {
		t.Errorf("A(x) differs from NewAvgPoolSR(2) by %g", d)
	}
	if lhs, rhs := dot(out[0], yv), dot(xv, out[2]); abs(lhs-rhs) > 1e-9*abs(lhs) {
		t.Errorf("⟨Ax, y⟩ = %g, ⟨x, Aᵀy⟩ = %g", lhs, rhs)
	}
	if d := maxDiff(out[3], yv); d > 1e-12 {
		t.Errorf("A(Project(x, y)) differs from y by %g", d)
	}

	same, _ := FromFunc(Func{Name: "double", Apply: func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 2) }})
	if got := measShape(t, same, 1, 1, 8, 8); got[2] != 8 || got[3] != 8 {
		t.Errorf("no Shape: measurement shape %v, want the input's", got)
	}
	for _, bad := range []Func{{Apply: pool2(false, false).Apply}, {Name: "nothing"}} {
		if _, err := FromFunc(bad); err == nil || !strings.Contains(err.Error(), "operator.FromFunc") {
			t.Errorf("FromFunc(%+v): error %v", bad.Name, err)
		}
	}
}

func abs(v float64) float64 { return max(v, -v) }
