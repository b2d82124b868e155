package phase_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/phase"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// object is a random positive n×n image in [0.2, 1) (one sample, one channel).
func object(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n*n)
	for i := range x {
		x[i] = 0.2 + 0.8*rng.Float64()
	}
	return x
}

// problem measures x (n×n) noise-free through phase_retrieval with oversample 2.
func problem(t *testing.T, x []float64, n int) *solver.Problem {
	t.Helper()
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.NewPhaseRetrieval(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, _ := noise.NewGaussian(0.05)
	return &solver.Problem{Operator: op, Noise: nm, Backend: be, XShape: shapes.Make(dtypes.Float64, 1, 1, n, n),
		Y: apply(t, be, op, tensors.FromFlatDataAndDimensions(x, 1, 1, n, n))}
}

func apply(t *testing.T, be backends.Backend, op operator.Operator, x *tensors.Tensor) *tensors.Tensor {
	t.Helper()
	e, err := graph.NewExec(be, func(x *graph.Node) *graph.Node { return op.Apply(x) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := out[0].LocalClone()
	return c
}

// ambiguousError is the relative error of got against x up to the trivial ambiguities of a
// real object in a tight support: global sign and 180° rotation.
func ambiguousError(got, x []float64, n int) float64 {
	best := math.Inf(1)
	for _, sign := range []float64{1, -1} {
		for _, rot := range []bool{false, true} {
			var num, den float64
			for i := range n {
				for j := range n {
					k := i*n + j
					if rot {
						k = (n-1-i)*n + (n - 1 - j)
					}
					d := sign*got[k] - x[i*n+j]
					num += d * d
					den += x[i*n+j] * x[i*n+j]
				}
			}
			best = min(best, math.Sqrt(num/den))
		}
	}
	return best
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// HIO and OSS recover an 8×8 positive object from its oversampled Fourier magnitudes
// (12×12 after padding) up to sign and rotation, keeping the lowest-residual run of 4
// seeds as the pipeline's --restarts does.
func TestRecoverSyntheticObject(t *testing.T) {
	const n = 8
	x := object(n, 3)
	p := problem(t, x, n)
	ynorm := norm(tensors.MustCopyFlatData[float64](p.Y))
	for _, name := range []string{"hio", "oss"} {
		s, err := solver.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		bestRes, bestErr := math.Inf(1), math.Inf(1)
		for seed := uint64(1); seed <= 4; seed++ {
			res, err := solver.Solve(context.Background(), s, p, map[string]any{"iters": 2000}, seed, solver.Hooks{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if res.NFE != 0 || len(res.Distances) != 1 || !res.X.Shape().Equal(p.XShape) {
				t.Fatalf("%s: NFE %d, distances %v, X %s", name, res.NFE, res.Distances, res.X.Shape())
			}
			if r := res.Distances[0] / ynorm; r < bestRes {
				bestRes, bestErr = r, ambiguousError(tensors.MustCopyFlatData[float64](res.X), x, n)
			}
		}
		t.Logf("%s, 2000 iterations, best of 4 seeds: relative residual %.2e, image error %.2e", name, bestRes, bestErr)
		if bestRes > 1e-3 || bestErr > 1e-2 {
			t.Errorf("%s: relative residual %.2e, image error %.2e", name, bestRes, bestErr)
		}
	}
}

// padded is x (n×n) zero-padded by 2 on each side (the operator's padding at n = 8).
func padded(x []float64, n int) *tensors.Tensor {
	m := n + 4
	z := make([]float64, m*m)
	for i := range n {
		copy(z[(i+2)*m+2:], x[i*n:(i+1)*n])
	}
	return tensors.FromFlatDataAndDimensions(z, 1, 1, m, m)
}

// ER is a local method (it stagnates from random starts, as Fienup observed): from the
// object perturbed by ±0.1 it converges back to the object, and the object is a fixed
// point of every method. The start is given as a step-0 resume state.
func TestERConvergesLocallyAndObjectIsFixed(t *testing.T) {
	const n = 8
	x := object(n, 3)
	p := problem(t, x, n)
	rng := rand.New(rand.NewPCG(9, 9))
	near := make([]float64, len(x))
	for i, v := range x {
		near[i] = v + 0.2*(rng.Float64()-0.5)
	}
	er, _ := solver.Lookup("er")
	res, err := solver.Solve(context.Background(), er, p, map[string]any{"iters": 1000}, 1,
		solver.Hooks{Resume: &solver.State{X: padded(near, n)}})
	if err != nil {
		t.Fatal(err)
	}
	if e := ambiguousError(tensors.MustCopyFlatData[float64](res.X), x, n); e > 1e-3 {
		t.Errorf("er from a ±0.1 perturbation: image error %.2e", e)
	}
	for _, name := range []string{"er", "hio", "oss"} {
		s, _ := solver.Lookup(name)
		res, err := solver.Solve(context.Background(), s, p, map[string]any{"iters": 50}, 1,
			solver.Hooks{Resume: &solver.State{X: padded(x, n)}})
		if err != nil {
			t.Fatal(err)
		}
		if e := ambiguousError(tensors.MustCopyFlatData[float64](res.X), x, n); e > 1e-9 || res.Distances[0] > 1e-9 {
			t.Errorf("%s from the object: image error %.2e, residual %.2e", name, e, res.Distances[0])
		}
	}
}

// ER's Fourier residual ‖|F z| − y‖ never grows: alternating projections onto a convex set
// (the support and range) and the magnitude set. (With clip off the distances are those of
// the clipped estimate, not of the iterate, so only clip on is checked.)
func TestERResidualNonIncreasing(t *testing.T) {
	const n = 8
	p := problem(t, object(n, 5), n)
	s, _ := solver.Lookup("er")
	var dists []float64
	_, err := solver.Solve(context.Background(), s, p, map[string]any{"iters": 500}, 7, solver.Hooks{
		Progress: func(done, total int, d []float64) { dists = append(dists, d[0]) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(dists) != 500 || !(dists[499] < dists[0]/4) {
		t.Fatalf("%d distances, first %v, last %v", len(dists), dists[0], dists[len(dists)-1])
	}
	for k := 1; k < len(dists); k++ {
		if dists[k] > dists[k-1]*(1+1e-9)+1e-12 {
			t.Fatalf("the residual grew at step %d: %v → %v", k+1, dists[k-1], dists[k])
		}
	}
}

// A non-magnitude operator is refused before any work, naming solver and operator; bad
// params are refused by Resolve.
func TestRefusals(t *testing.T) {
	p := problem(t, object(8, 1), 8)
	sr, _ := operator.NewAvgPoolSR(2)
	q := *p
	q.Operator, q.Y = sr, nil
	for _, name := range []string{"er", "hio", "oss"} {
		s, err := solver.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		err = solver.Check(s, &q, nil)
		if err == nil || !strings.Contains(err.Error(), "solver "+name) || !strings.Contains(err.Error(), sr.Name()) ||
			!strings.Contains(err.Error(), string(operator.CapMagnitudeProjection)) {
			t.Errorf("%s on %s: %v", name, sr.Name(), err)
		}
		if err := solver.Check(s, p, nil); err != nil {
			t.Errorf("%s on phase retrieval: %v", name, err)
		}
		if _, err := solver.Resolve(s, map[string]any{"iters": 0}); err == nil || !strings.Contains(err.Error(), "iters") {
			t.Errorf("%s: iters 0: %v", name, err)
		}
	}
	for _, name := range []string{"hio", "oss"} {
		s, _ := solver.Lookup(name)
		for _, beta := range []any{0.0, -0.5, "nan"} {
			if _, err := solver.Resolve(s, map[string]any{"beta": beta}); err == nil || !strings.Contains(err.Error(), "beta") {
				t.Errorf("%s: beta %v: %v", name, beta, err)
			}
		}
	}
	er, _ := solver.Lookup("er")
	if _, err := solver.Resolve(er, map[string]any{"beta": 0.5}); err == nil {
		t.Error("er takes no beta")
	}
}

// Resuming from any Loop checkpoint ends on the same bits as the uninterrupted run (OSS's
// α depends on the step count, so the resumed count matters); different seeds differ.
func TestResumeBitExact(t *testing.T) {
	const n = 8
	p := problem(t, object(n, 2), n)
	for _, name := range []string{"er", "hio", "oss"} {
		s, _ := solver.Lookup(name)
		params, err := solver.Resolve(s, map[string]any{"iters": 40})
		if err != nil {
			t.Fatal(err)
		}
		run, err := s.Prepare(p, params)
		if err != nil {
			t.Fatal(err)
		}
		var cks []solver.State
		full, err := run.Solve(context.Background(), p.Y, 11, solver.Hooks{CheckpointEvery: 15,
			Checkpoint: func(st solver.State) error { cks = append(cks, st); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if len(cks) != 2 || cks[1].Done != 30 || cks[1].RNG != nil {
			t.Fatalf("%s: checkpoints %v", name, cks)
		}
		want := tensors.MustCopyFlatData[float64](full.X)
		for _, ck := range cks {
			res, err := run.Solve(context.Background(), p.Y, 11, solver.Hooks{Resume: &ck})
			if err != nil {
				t.Fatal(err)
			}
			got := tensors.MustCopyFlatData[float64](res.X)
			for i := range want {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
					t.Fatalf("%s: resumed from step %d, value %d is %v, want %v", name, ck.Done, i, got[i], want[i])
				}
			}
			if res.Distances[0] != full.Distances[0] {
				t.Errorf("%s: resumed distance %v, want %v", name, res.Distances, full.Distances)
			}
		}
		other, err := run.Solve(context.Background(), p.Y, 12, solver.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		if tensors.MustCopyFlatData[float64](other.X)[0] == want[0] {
			t.Errorf("%s: seeds 11 and 12 gave the same run", name)
		}
	}
}

// Every step is odd in z, so the negative start gives the positive start's run negated,
// with the same residual; the symmetric start is another run.
func TestStartSign(t *testing.T) {
	const n = 8
	p := problem(t, object(n, 6), n)
	for _, name := range []string{"er", "hio", "oss"} {
		s, _ := solver.Lookup(name)
		var xs [][]float64
		var ds []float64
		for _, start := range []string{"positive", "negative", "symmetric"} {
			res, err := solver.Solve(context.Background(), s, p, map[string]any{"iters": 100, "start": start}, 3, solver.Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			xs, ds = append(xs, tensors.MustCopyFlatData[float64](res.X)), append(ds, res.Distances[0])
		}
		for i := range xs[0] {
			if xs[1][i] != -xs[0][i] {
				t.Fatalf("%s: value %d: negative start %v, positive %v", name, i, xs[1][i], xs[0][i])
			}
		}
		if ds[1] != ds[0] || ds[2] == ds[0] {
			t.Errorf("%s: distances %v (positive, negative, symmetric)", name, ds)
		}
	}
	if _, err := solver.Resolve(phase.Solvers()[0], map[string]any{"start": "zero"}); err == nil {
		t.Error("start zero accepted")
	}
}

// OSS's schedule is the sample code's FX: with X = done + 1 (1-based), c = ⌈iters/10⌉,
// FX = ((11 − ⌈10X/iters⌉)·c − c)·2N/max + 2N/10, max the first value: 2N down to N/5.
func TestAlphaSchedule(t *testing.T) {
	const iters, n = 1000, 12
	c := math.Ceil(iters / 10.0)
	fx := func(x int) float64 { return (11 - math.Ceil(10*float64(x)/iters)) * c }
	for done := range iters {
		want := (fx(done+1)-c)*2*n/fx(1) + 2*n/10.0
		if got := phase.Alpha(done, iters, n); math.Abs(got-want) > 1e-12 {
			t.Fatalf("step %d: α %v, want %v", done, got, want)
		}
	}
	if phase.Alpha(0, iters, n) != 24 || math.Abs(phase.Alpha(iters-1, iters, n)-2.4) > 1e-12 {
		t.Errorf("α from %v to %v, want 24 to 2.4", phase.Alpha(0, iters, n), phase.Alpha(iters-1, iters, n))
	}
}

// float32 problems run too (the step's α input follows x's dtype).
func TestFloat32(t *testing.T) {
	const n = 8
	p := problem(t, object(n, 4), n)
	y := tensors.MustCopyFlatData[float64](p.Y)
	y32 := make([]float32, len(y))
	for i, v := range y {
		y32[i] = float32(v)
	}
	p.Y = tensors.FromFlatDataAndDimensions(y32, p.Y.Shape().Dimensions...)
	p.XShape = shapes.Make(dtypes.Float32, 1, 1, n, n)
	s, _ := solver.Lookup("oss")
	res, err := solver.Solve(context.Background(), s, p, map[string]any{"iters": 20}, 1, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.X.Shape().DType != dtypes.Float32 || math.IsNaN(res.Distances[0]) {
		t.Errorf("X %s, distance %v", res.X.Shape(), res.Distances)
	}
}
