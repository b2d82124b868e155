package xla

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

type broadcastCase struct {
	in, out, axes []int // axes: where each input axis goes in the output
}

var broadcastCases = []broadcastCase{
	{[]int{}, []int{3, 4}, nil},                              // scalar everywhere
	{[]int{}, []int{1}, nil},                                 // scalar to one element
	{[]int{4}, []int{3, 4}, []int{1}},                        // repeated rows
	{[]int{3}, []int{3, 4}, []int{0}},                        // each value repeated along a row
	{[]int{5}, []int{2, 5, 3, 3}, []int{1}},                  // per-channel: broadcast, copy, broadcast
	{[]int{2, 5}, []int{2, 5, 3, 3}, []int{0, 1}},            // GroupNorm mean back to [B, C, H, W]
	{[]int{1, 5, 1}, []int{4, 5, 6}, []int{0, 1, 2}},         // size-1 input axes broadcast
	{[]int{3, 1, 2}, []int{3, 1, 2}, []int{0, 1, 2}},         // nothing to broadcast
	{[]int{2, 3}, []int{2, 0, 3}, []int{0, 2}},               // empty output
	{[]int{16}, []int{4, 16, 32, 40}, []int{1}},              // large: split across cores
	{[]int{4, 16, 32}, []int{4, 16, 32, 40}, []int{0, 1, 2}}, // large, broadcast innermost
	{[]int{40}, []int{4, 16, 32, 40}, []int{3}},              // large, broadcast outermost
	{[]int{2, 40}, []int{2, 16, 32, 40}, []int{0, 3}},        // large, alternating
	{[]int{}, append([]int{}, bigDims...), nil},              // large scalar fill
}

func TestBroadcastInDimMatchesSimpleGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	op := backends.OpTypeBroadcastInDim
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.Int32, dtypes.Int64} {
		for i, c := range broadcastCases {
			x := randTensor(rng, dt, true, c.in...)
			fn := func(x *graph.Node) *graph.Node {
				return graph.ExpandAndBroadcast(x, c.out, expandedAxes(len(c.out), c.axes))
			}
			name := fmt.Sprintf("%s case %d %v → %v", dt, i, c.in, c.out)
			if hits := checkAgainstSimpleGo(t, name, op, fn, x); hits != 1 {
				t.Fatalf("%s: the fast executor ran %d times of 1", name, hits)
			}
		}
	}
}

type concatCase struct {
	dims [][]int
	axis int
}

var concatCases = []concatCase{
	{[][]int{{2, 3}, {2, 4}}, 1},
	{[][]int{{2, 3}, {5, 3}}, 0},
	{[][]int{{1, 2, 3, 3}, {1, 4, 3, 3}, {1, 1, 3, 3}}, 1}, // UNet skip connection, three inputs
	{[][]int{{3, 1}, {3, 1}}, 1},                           // one-element rows
	{[][]int{{2, 32, 16, 16}, {2, 64, 16, 16}}, 1},         // large: split across cores
	{[][]int{{20000}, {30000}}, 0},                         // large, a single row
	{[][]int{{4096, 3}, {4096, 5}}, 1},                     // large, many short rows
}

func TestConcatenateMatchesSimpleGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	op := backends.OpTypeConcatenate
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.Int32, dtypes.Int64} {
		for i, c := range concatCases {
			x := randTensor(rng, dt, true, c.dims[0]...)
			y := randTensor(rng, dt, true, c.dims[1]...)
			var fn any = func(x, y *graph.Node) *graph.Node { return graph.Concatenate([]*graph.Node{x, y}, c.axis) }
			inputs := []*tensors.Tensor{x, y}
			if len(c.dims) == 3 {
				fn = func(x, y, z *graph.Node) *graph.Node { return graph.Concatenate([]*graph.Node{x, y, z}, c.axis) }
				inputs = append(inputs, randTensor(rng, dt, true, c.dims[2]...))
			}
			name := fmt.Sprintf("%s case %d %v axis %d", dt, i, c.dims, c.axis)
			if hits := checkAgainstSimpleGo(t, name, op, fn, inputs...); hits != 1 {
				t.Fatalf("%s: the fast executor ran %d times of 1", name, hits)
			}
		}
	}
}

// expandedAxes are the output axes that no input axis maps to.
func expandedAxes(rank int, kept []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(kept, a) {
			out = append(out, a)
		}
	}
	return out
}

// SimpleGo's own Concatenate panics on empty operands; ours copies the others.
func TestConcatenateEmptyOperands(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	emb := mustBackend(t)
	cases := []struct {
		empty, other []int
		axis         int
	}{
		{[]int{2, 0, 3}, []int{2, 2, 3}, 1}, // the result is the other operand
		{[]int{0, 2, 3}, []int{2, 2, 3}, 0},
		{[]int{2, 2, 0}, []int{2, 2, 0}, 2}, // an empty result
	}
	for i, c := range cases {
		x, y := randTensor(rng, dtypes.Float32, false, c.empty...), randTensor(rng, dtypes.Float32, true, c.other...)
		fn := func(x, y *graph.Node) *graph.Node { return graph.Concatenate([]*graph.Node{x, y}, c.axis) }
		before := fastHits[backends.OpTypeConcatenate].Load()
		got := runGraph(t, emb, fn, x, y)
		if fastHits[backends.OpTypeConcatenate].Load() == before {
			t.Fatalf("case %d: the fast Concatenate did not run", i)
		}
		bitsEqual(t, fmt.Sprint("empty concat ", i), got, y)
	}
}

// Other dtypes (here uint8) are SimpleGo's.
func TestBroadcastAndConcatenateOtherDTypesFallBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	x := randTensor(rng, dtypes.Int32, false, 2, 5)
	bcast := func(x *graph.Node) *graph.Node {
		u := graph.ConvertDType(x, dtypes.Uint8)
		return graph.ConvertDType(graph.ExpandAndBroadcast(u, []int{2, 5, 3}, []int{2}), dtypes.Int32)
	}
	if hits := checkAgainstSimpleGo(t, "uint8 broadcast", backends.OpTypeBroadcastInDim, bcast, x); hits != 0 {
		t.Fatal("the row-copy BroadcastInDim took uint8")
	}
	concat := func(x *graph.Node) *graph.Node {
		u := graph.ConvertDType(x, dtypes.Uint8)
		return graph.ConvertDType(graph.Concatenate([]*graph.Node{u, u}, 1), dtypes.Int32)
	}
	if hits := checkAgainstSimpleGo(t, "uint8 concatenate", backends.OpTypeConcatenate, concat, x); hits != 0 {
		t.Fatal("the row-copy Concatenate took uint8")
	}
}
