package operator

// Properties every operator must have: exact adjoints, exact projections, gradients that
// match finite differences, deterministic construction.

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for random x, y.
func TestAdjointness(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, op := range testOps(t) {
		lin, ok := op.(Linear)
		if !ok {
			continue
		}
		t.Run(opLabel(op), func(t *testing.T) {
			xt, x := randTensor(rng, 2, 2, 32, 32)
			yt, y := randTensor(rng, measShape(t, op, 2, 2, 32, 32)...)
			out := run(t, func(x, y *graph.Node) []*graph.Node {
				return []*graph.Node{lin.Apply(x), lin.Adjoint(y)}
			}, xt, yt)
			lhs, rhs := dot(out[0], y), dot(x, out[1])
			if rel := math.Abs(lhs-rhs) / math.Abs(lhs); rel > 1e-10 {
				t.Errorf("⟨Ax, y⟩ = %.15g, ⟨x, Aᵀy⟩ = %.15g: relative difference %.2g", lhs, rhs, rel)
			}
		})
	}
}

// A(Project(x, y)) = y, and Project(x, A x) = x (the measured part is replaced, the rest
// of x is kept).
func TestProjection(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, op := range testOps(t) {
		p, ok := op.(Projector)
		if !ok {
			continue
		}
		t.Run(opLabel(op), func(t *testing.T) {
			xt, x := randTensor(rng, 2, 3, 32, 32)
			yt, y := randTensor(rng, measShape(t, op, 2, 3, 32, 32)...)
			out := run(t, func(x, y *graph.Node) []*graph.Node {
				return []*graph.Node{p.Apply(p.Project(x, y)), p.Project(x, p.Apply(x))}
			}, xt, yt)
			if _, ok := op.(*Inpainting); ok {
				// For a mask, y's dropped pixels are not measurements: compare m ⊙ y.
				y = run(t, p.Apply, yt)[0]
			}
			if d := maxDiff(out[0], y); d > 1e-10 {
				t.Errorf("A(Project(x, y)) differs from y by %.2g", d)
			}
			if d := maxDiff(out[1], x); d > 1e-10 {
				t.Errorf("Project(x, A x) differs from x by %.2g", d)
			}
		})
	}
}

// The gradient of ‖y − A(x)‖² w.r.t. x matches central differences along random directions.
func TestGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, op := range testOps(t) {
		t.Run(opLabel(op), func(t *testing.T) {
			dims := []int{1, 2, 32, 32}
			xt, x := randTensor(rng, dims...)
			yt, _ := randTensor(rng, measShape(t, op, dims...)...)
			loss := func(x, y *graph.Node) *graph.Node {
				return graph.ReduceAllSum(graph.Square(graph.Sub(y, op.Apply(x))))
			}
			lossExec, err := graph.NewExec(testBackend(), loss)
			if err != nil {
				t.Fatal(err)
			}
			grad := run(t, func(x, y *graph.Node) *graph.Node { return graph.Gradient(loss(x, y), x)[0] }, xt, yt)[0]
			f := func(v []float64) float64 {
				return tensors.ToScalar[float64](lossExec.MustExec1(tensors.FromFlatDataAndDimensions(v, dims...), yt))
			}
			const h = 1e-5
			for range 2 {
				dir := randn(rng, len(x))
				plus, minus := make([]float64, len(x)), make([]float64, len(x))
				for i := range x {
					plus[i], minus[i] = x[i]+h*dir[i], x[i]-h*dir[i]
				}
				fd := (f(plus) - f(minus)) / (2 * h)
				an := dot(grad, dir)
				if rel := math.Abs(fd-an) / math.Abs(fd); rel > 1e-6 {
					t.Errorf("directional derivative: autodiff %.12g, central differences %.12g (relative error %.2g)", an, fd, rel)
				}
			}
		})
	}
}

// Operators built from the same seed are identical; other seeds give other random parts.
func TestSeeds(t *testing.T) {
	mask := func(seed uint64, build func(uint64) (*Inpainting, error)) []float64 {
		m, err := build(seed)
		if err != nil {
			t.Fatal(err)
		}
		return m.Mask()
	}
	builders := map[string]func(uint64) (*Inpainting, error){
		"box":    func(s uint64) (*Inpainting, error) { return BoxInpaintingFor(64, 64, s) },
		"random": func(s uint64) (*Inpainting, error) { return NewRandomInpaintingRange(64, 64, 0.3, 0.7, s) },
	}
	for name, b := range builders {
		if maxDiff(mask(7, b), mask(7, b)) != 0 {
			t.Errorf("%s: the same seed gave two masks", name)
		}
		if maxDiff(mask(7, b), mask(8, b)) == 0 {
			t.Errorf("%s: seeds 7 and 8 gave the same mask", name)
		}
	}
	a, b, c := NewNonlinearBlur(1).Code(), NewNonlinearBlur(1).Code(), NewNonlinearBlur(2).Code()
	if maxDiff(a, b) != 0 || maxDiff(a, c) == 0 {
		t.Error("nonlinear_blur: latent code is not a function of the seed")
	}
	// The code is drawn once: applying the operator twice gives the same measurement.
	op := NewNonlinearBlur(1)
	xt, _ := randTensor(rand.New(rand.NewPCG(1, 2)), 1, 1, 16, 16)
	out := run(t, func(x *graph.Node) []*graph.Node { return []*graph.Node{op.Apply(x), op.Apply(x)} }, xt)
	if maxDiff(out[0], out[1]) != 0 {
		t.Error("nonlinear_blur: two applications differ")
	}
}

// Operators follow the input's dtype: float32 gives float32 results close to float64's.
func TestFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, op := range testOps(t) {
		t.Run(opLabel(op), func(t *testing.T) {
			xt, x := randTensor(rng, 1, 2, 32, 32)
			x32 := make([]float32, len(x))
			for i, v := range x {
				x32[i] = float32(v)
			}
			want := run(t, op.Apply, xt)[0]
			exec, err := graph.NewExec(testBackend(), op.Apply)
			if err != nil {
				t.Fatal(err)
			}
			out := exec.MustExec1(tensors.FromFlatDataAndDimensions(x32, 1, 2, 32, 32))
			got := tensors.MustCopyFlatData[float32](out)
			scale := 0.0
			for _, v := range want {
				scale = max(scale, math.Abs(v))
			}
			for i := range got {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*scale {
					t.Fatalf("value %d: float32 %g, float64 %g", i, got[i], want[i])
				}
			}
		})
	}
}
