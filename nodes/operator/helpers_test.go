package operator

// Test helpers: one embedded backend, random float64 tensors, running graph functions.

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var testBackend = sync.OnceValue(func() backends.Backend {
	b, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	return b
})

func randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func size(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// randTensor returns a standard normal float64 tensor and its data.
func randTensor(rng *rand.Rand, dims ...int) (*tensors.Tensor, []float64) {
	v := randn(rng, size(dims))
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), v...), dims...), v
}

// run builds and runs fn (a graph function of *graph.Node inputs returning one node or a
// slice) on the embedded backend and returns each output's flat float64 data.
func run(t testing.TB, fn any, inputs ...any) [][]float64 {
	t.Helper()
	exec, err := graph.NewExecAny(testBackend(), fn)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(inputs...)
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float64, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float64](o)
	}
	return res
}

func measShape(t testing.TB, op Operator, dims ...int) []int {
	t.Helper()
	s, err := op.MeasurementShape(shapes.Make(dtypes.Float64, dims...))
	if err != nil {
		t.Fatal(err)
	}
	return s.Dimensions
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// maxDiff is max |a − b|.
func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// testOps are the operators every generic test runs on (32×32 images).
func testOps(t testing.TB) []Operator {
	t.Helper()
	must := func(op Operator, err error) Operator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	rng := rand.New(rand.NewPCG(3, 4))
	k := randn(rng, 7*7)
	sum := 0.0
	for _, v := range k {
		sum += v
	}
	for i := range k {
		k[i] /= sum
	}
	return []Operator{
		must(BoxInpaintingFor(32, 32, 1)),
		must(NewRandomInpaintingFixed(32, 32, PaperDropFraction, 2)),
		must(NewRandomInpaintingRange(32, 32, ReferenceDropLo, ReferenceDropHi, 3)),
		must(NewBicubicSR(4)),
		must(NewAvgPoolSR(4)),
		must(NewGaussianBlur(61, 3)),
		must(NewMotionBlur(61, 0.5, 5)),
		must(NewBlur(k, 7, "random7")),
		must(NewPhaseRetrieval(2)),
		NewNonlinearBlur(6),
	}
}

func opLabel(op Operator) string {
	if b, ok := op.(*Blur); ok {
		return b.Name()
	}
	if s, ok := op.(interface{ String() string }); ok {
		return s.String()
	}
	return op.Name()
}
