package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

type reduceCase struct {
	dims, axes []int
}

var reduceCases = []reduceCase{
	{[]int{7}, []int{0}},                             // to a scalar
	{[]int{}, nil},                                   // a scalar reduced over no axes (identity)
	{[]int{1, 1}, []int{0, 1}},                       // one element
	{[]int{3, 1, 5}, []int{1}},                       // only a size-1 axis reduced
	{[]int{2, 0, 3}, []int{1}},                       // empty reduced axis: the initial value
	{[]int{0, 4}, []int{1}},                          // empty output
	{[]int{8, 32, 8, 8}, []int{2, 3}},                // GroupNorm statistics: reduce-last
	{[]int{8, 32, 8, 8}, []int{0, 2, 3}},             // bias gradient: reduced, kept, reduced
	{[]int{16, 4096}, []int{0}},                      // reduce-first
	{[]int{4, 32, 8, 8, 4}, []int{1, 4}},             // kept, reduced, kept, reduced
	{[]int{2, 64, 32, 16}, []int{3}},                 // softmax rows, large: split across cores
	{[]int{2, 64, 32, 16}, []int{0, 2, 3}},           // large, split on the middle kept axis
	{[]int{64, 1024}, []int{0}},                      // large reduce-first: split over columns
	{[]int{3, 2, 5}, []int{2, 0}},                    // axes out of order
	{append([]int{}, bigDims...), []int{0, 1, 2, 3}}, // large, to a scalar: one core
}

func TestReduceMatchesSimpleGoBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	ops := map[backends.OpType]func(*graph.Node, ...int) *graph.Node{
		backends.OpTypeReduceSum: graph.ReduceSum,
		backends.OpTypeReduceMax: graph.ReduceMax,
	}
	for op, f := range ops {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			for i, c := range reduceCases {
				x := randTensor(rng, dt, false, c.dims...)
				fn := func(x *graph.Node) *graph.Node { return f(x, c.axes...) }
				name := fmt.Sprintf("%s %s case %d %v over %v", op, dt, i, c.dims, c.axes)
				hits := checkAgainstSimpleGo(t, name, op, fn, x)
				if len(c.axes) > 0 && hits != 1 {
					t.Fatalf("%s: the fast executor ran %d times of 1", name, hits)
				}
			}
		}
	}
}

// Special values: NaN and ±Inf propagate as in SimpleGo (bit for bit).
func TestReduceSpecialValuesMatchSimpleGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	x := randTensor(rng, dtypes.Float32, true, 2, 64, 32, 16)
	for _, axes := range [][]int{{3}, {0, 2, 3}} {
		fn := func(x *graph.Node) *graph.Node { return graph.ReduceMax(x, axes...) }
		checkAgainstSimpleGo(t, fmt.Sprint("max special ", axes), backends.OpTypeReduceMax, fn, x)
		fn = func(x *graph.Node) *graph.Node { return graph.ReduceSum(x, axes...) }
		checkAgainstSimpleGo(t, fmt.Sprint("sum special ", axes), backends.OpTypeReduceSum, fn, x)
	}
}

func TestReduceIntegersFallBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	x := randTensor(rng, dtypes.Int32, false, 2, 64, 32, 16)
	fn := func(x *graph.Node) *graph.Node { return graph.ReduceSum(x, 3) }
	if hits := checkAgainstSimpleGo(t, "int32 sum", backends.OpTypeReduceSum, fn, x); hits != 0 {
		t.Fatal("the float reduction took int32")
	}
}

// The float32 sums stay within float32 rounding of a float64 sum: |err| ≤ n·ε·Σ|x| for n
// terms summed in order (ε = 2⁻²⁴), the classic bound for recursive summation.
func TestReduceSumWithinFloat32RoundingOfFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	dims := []int{8, 32, 8, 8}
	x := randTensor(rng, dtypes.Float32, false, dims...)
	got := tensors.MustCopyFlatData[float32](runGraph(t, mustBackend(t), func(x *graph.Node) *graph.Node {
		return graph.ReduceSum(x, 0, 2, 3)
	}, x))
	xs := tensors.MustCopyFlatData[float32](x)
	n := dims[0] * dims[2] * dims[3]
	worst := 0.0 // largest |error| / Σ|x|
	for c := range dims[1] {
		sum, abs := 0.0, 0.0
		for b := range dims[0] {
			for j := range dims[2] * dims[3] {
				v := float64(xs[(b*dims[1]+c)*dims[2]*dims[3]+j])
				sum, abs = sum+v, abs+math.Abs(v)
			}
		}
		if bound := float64(n) * 0x1p-24 * abs; math.Abs(float64(got[c])-sum) > bound {
			t.Fatalf("channel %d: sum %g, float64 reference %g, beyond the bound %g", c, got[c], sum, bound)
		}
		worst = max(worst, math.Abs(float64(got[c])-sum)/abs)
	}
	t.Logf("largest |float32 sum − float64 sum| / Σ|x| over %d channels of %d terms: %.3g (bound n·2⁻²⁴ = %.3g)", dims[1], n, worst, float64(n)*0x1p-24)
}
