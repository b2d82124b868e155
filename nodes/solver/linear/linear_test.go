package linear_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/linear"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"
)

var (
	beOnce sync.Once
	be     backends.Backend
	beErr  error
)

func backend(t testing.TB) backends.Backend {
	t.Helper()
	beOnce.Do(func() { be, beErr = xla.New("embedded") })
	if beErr != nil {
		t.Fatal(beErr)
	}
	return be
}

// dense is A as an m×n matrix (m = measurement size, n = C·H·W per sample), built by applying
// op to the n basis images in one batch.
func dense(t *testing.T, op operator.Operator, c, h, w int) [][]float64 {
	t.Helper()
	a, err := operator.Matrix(backend(t), op, c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mulVec(a [][]float64, x []float64) []float64 {
	out := make([]float64, len(a))
	for j, row := range a {
		for i, v := range row {
			out[j] += v * x[i]
		}
	}
	return out
}

func norm(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// measurement is a deterministic y of shape dims, in [-1, 1].
func measurement(dims ...int) []float64 {
	n := 1
	for _, d := range dims {
		n *= d
	}
	y := make([]float64, n)
	for i := range y {
		y[i] = 0.8 * math.Sin(0.7*float64(i)+0.3)
	}
	return y
}

type testOp struct {
	name    string
	op      operator.Operator
	c, h, w int
}

func ops(t *testing.T) []testOp {
	t.Helper()
	box, err := operator.NewBoxInpainting(4, 4, 2, 2, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := operator.NewAvgPoolSR(2)
	bicubic, _ := operator.NewBicubicSR(2)
	blur, err := operator.NewGaussianBlur(3, 1.0)
	if err != nil {
		t.Fatal(err)
	}
	return []testOp{{"box inpainting", box, 2, 4, 4}, {"avgpool_sr", pool, 2, 4, 4}, {"bicubic sr", bicubic, 1, 8, 8}, {"gaussian blur", blur, 1, 8, 8}}
}

// problem is B samples of o with Gaussian noise sigma and a deterministic y.
func problem(t *testing.T, o testOp, b int, dt dtypes.DType, sigma float64) (*solver.Problem, []float64) {
	t.Helper()
	xs := shapes.Make(dt, b, o.c, o.h, o.w)
	ys, err := o.op.MeasurementShape(xs)
	if err != nil {
		t.Fatal(err)
	}
	y := measurement(ys.Dimensions...)
	nm, _ := noise.NewGaussian(sigma)
	p := &solver.Problem{Operator: o.op, Noise: nm, Backend: backend(t), XShape: xs}
	if dt == dtypes.Float32 {
		y32 := make([]float32, len(y))
		for i, v := range y {
			y32[i] = float32(v)
			y[i] = float64(y32[i])
		}
		p.Y = tensors.FromFlatDataAndDimensions(y32, ys.Dimensions...)
	} else {
		p.Y = tensors.FromFlatDataAndDimensions(y, ys.Dimensions...)
	}
	return p, y
}

func solve(t *testing.T, name string, p *solver.Problem, params map[string]any) (*solver.Result, []float64) {
	t.Helper()
	s, err := solver.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := solver.Solve(context.Background(), s, p, params, 1, solver.Hooks{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !res.X.Shape().Equal(p.XShape) || res.NFE != 0 || len(res.Distances) != p.XShape.Dimensions[0] {
		t.Fatalf("%s: X %s (want %s), NFE %d, %d distances", name, res.X.Shape(), p.XShape, res.NFE, len(res.Distances))
	}
	switch p.XShape.DType {
	case dtypes.Float32:
		x32 := tensors.MustCopyFlatData[float32](res.X)
		x := make([]float64, len(x32))
		for i, v := range x32 {
			x[i] = float64(v)
		}
		return res, x
	default:
		return res, tensors.MustCopyFlatData[float64](res.X)
	}
}

// checkDistances compares res.Distances with ‖y − A x‖ per sample, computed on the host.
func checkDistances(t *testing.T, what string, a [][]float64, x, y []float64, dist []float64, tol float64) {
	t.Helper()
	b := len(dist)
	n, m := len(x)/b, len(y)/b
	for k := range b {
		ax := mulVec(a, x[k*n:(k+1)*n])
		r := make([]float64, m)
		for j := range m {
			r[j] = y[k*m+j] - ax[j]
		}
		if want := norm(r); math.Abs(dist[k]-want) > tol*(1+want) {
			t.Errorf("%s: sample %d distance %v, want ‖y − Ax‖ = %v", what, k, dist[k], want)
		}
	}
}

// pinv of inpainting keeps y on the observed pixels and zero elsewhere, exactly: A A⁺ y is
// m ⊙ y, the projection of y onto range(A).
func TestPinvInpaintingKeepsObservedPixels(t *testing.T) {
	o := ops(t)[0]
	mask := o.op.(*operator.Inpainting).Mask()
	for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		p, y := problem(t, o, 3, dt, 0.05)
		res, x := solve(t, "pinv", p, nil)
		a := dense(t, o.op, o.c, o.h, o.w)
		for i := range x {
			want := y[i] * mask[i%(o.h*o.w)]
			if x[i] != want {
				t.Fatalf("%s: x[%d] = %v, want m⊙y = %v", dt, i, x[i], want)
			}
		}
		n := o.c * o.h * o.w
		for k := range 3 {
			ax := mulVec(a, x[k*n:(k+1)*n])
			for j, v := range ax {
				if want := y[k*n+j] * mask[j%(o.h*o.w)]; v != want {
					t.Fatalf("%s: A A⁺y[%d] = %v, want %v", dt, j, v, want)
				}
			}
		}
		checkDistances(t, "pinv inpainting "+dt.String(), a, x, y, res.Distances, 1e-6)
	}
}

// pinv of super-resolution equals the dense Aᵀ(AAᵀ)⁻¹y (A has full row rank), and A A⁺ y = y.
func TestPinvSuperResolutionMatchesDense(t *testing.T) {
	for _, o := range ops(t)[1:3] {
		p, y := problem(t, o, 2, dtypes.Float64, 0.05)
		res, x := solve(t, "pinv", p, nil)
		a := dense(t, o.op, o.c, o.h, o.w)
		m, n := len(a), len(a[0])
		am := mat.NewDense(m, n, nil)
		for j, row := range a {
			am.SetRow(j, row)
		}
		var aat mat.Dense
		aat.Mul(am, am.T())
		worst, worstRange := 0.0, 0.0
		for k := range 2 {
			var z, want mat.VecDense
			if err := z.SolveVec(&aat, mat.NewVecDense(m, y[k*m:(k+1)*m])); err != nil {
				t.Fatal(err)
			}
			want.MulVec(am.T(), &z)
			for i := range n {
				worst = max(worst, math.Abs(x[k*n+i]-want.AtVec(i)))
			}
			for j, v := range mulVec(a, x[k*n:(k+1)*n]) {
				worstRange = max(worstRange, math.Abs(v-y[k*m+j]))
			}
		}
		t.Logf("%s: max |A⁺y − Aᵀ(AAᵀ)⁻¹y| = %.3g, max |A A⁺y − y| = %.3g", o.name, worst, worstRange)
		if worst > 1e-10 || worstRange > 1e-10 {
			t.Errorf("%s: pinv differs from the dense pseudo-inverse by %g, A A⁺y from y by %g", o.name, worst, worstRange)
		}
		checkDistances(t, "pinv "+o.name, a, x, y, res.Distances, 1e-9)
	}
}

// wiener with λ from σ is the exact posterior mean of N(μ, σ_x² I) under Gaussian noise:
// compared with prior.GaussianPosterior and with the normal equations solved in gonum.
func TestWienerIsGaussianPosteriorMean(t *testing.T) {
	const sigma, mu, sx2 = 0.05, 0.1, linear.DefaultSignalVar
	for _, o := range ops(t) {
		p, y := problem(t, o, 3, dtypes.Float64, sigma)
		res, x := solve(t, "wiener", p, map[string]any{"mean": mu})
		a := dense(t, o.op, o.c, o.h, o.w)
		m, n := len(a), len(a[0])
		am := mat.NewDense(m, n, nil)
		for j, row := range a {
			am.SetRow(j, row)
		}
		// (AᵀA/σ² + I/σ_x²) x = Aᵀy/σ² + μ/σ_x².
		var normal mat.Dense
		normal.Mul(am.T(), am)
		normal.Scale(1/(sigma*sigma), &normal)
		for i := range n {
			normal.Set(i, i, normal.At(i, i)+1/sx2)
		}
		means, vars := make([]float64, n), make([]float64, n)
		for i := range n {
			means[i], vars[i] = mu, sx2
		}
		worstPost, worstNormal := 0.0, 0.0
		for k := range 3 {
			yk := y[k*m : (k+1)*m]
			post, _ := prior.GaussianPosterior(means, vars, a, yk, sigma)
			var rhs, sol mat.VecDense
			rhs.MulVec(am.T(), mat.NewVecDense(m, yk))
			rhs.ScaleVec(1/(sigma*sigma), &rhs)
			for i := range n {
				rhs.SetVec(i, rhs.AtVec(i)+mu/sx2)
			}
			if err := sol.SolveVec(&normal, &rhs); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				worstPost = max(worstPost, math.Abs(x[k*n+i]-post[i]))
				worstNormal = max(worstNormal, math.Abs(x[k*n+i]-sol.AtVec(i)))
			}
		}
		t.Logf("%s: max |wiener − GaussianPosterior| = %.3g, max |wiener − normal equations| = %.3g", o.name, worstPost, worstNormal)
		if worstPost > 1e-9 || worstNormal > 1e-9 {
			t.Errorf("%s: wiener differs from the posterior mean by %g (normal equations: %g)", o.name, worstPost, worstNormal)
		}
		checkDistances(t, "wiener "+o.name, a, x, y, res.Distances, 1e-9)
	}
}

// float32 runs agree with float64 ones to float32 precision.
func TestFloat32MatchesFloat64(t *testing.T) {
	for _, o := range ops(t) {
		for _, name := range []string{"pinv", "wiener"} {
			if name == "pinv" && o.name == "gaussian blur" {
				continue // ill-conditioned: A⁺ amplifies float32 rounding
			}
			p64, _ := problem(t, o, 2, dtypes.Float64, 0.05)
			p32, y32 := problem(t, o, 2, dtypes.Float32, 0.05)
			// Same y in both: the float64 run takes the float32-rounded values.
			p64.Y = tensors.FromFlatDataAndDimensions(y32, p64.Y.Shape().Dimensions...)
			r64, x64 := solve(t, name, p64, nil)
			r32, x32 := solve(t, name, p32, nil)
			worst := 0.0
			for i := range x64 {
				worst = max(worst, math.Abs(x64[i]-x32[i]))
			}
			t.Logf("%s on %s: max |x₃₂ − x₆₄| = %.3g", name, o.name, worst)
			if worst > 2e-5 {
				t.Errorf("%s on %s: float32 differs from float64 by %g", name, o.name, worst)
			}
			for k := range r64.Distances {
				if math.Abs(r64.Distances[k]-r32.Distances[k]) > 1e-4 {
					t.Errorf("%s on %s: distance %v (float32) vs %v", name, o.name, r32.Distances[k], r64.Distances[k])
				}
			}
		}
	}
}

// A huge λ pulls every pixel to the prior mean.
func TestWienerLargeLambdaGivesMean(t *testing.T) {
	for _, o := range ops(t) {
		p, _ := problem(t, o, 2, dtypes.Float64, 0.05)
		_, x := solve(t, "wiener", p, map[string]any{"lambda": 1e12, "mean": -0.3})
		worst := 0.0
		for _, v := range x {
			worst = max(worst, math.Abs(v+0.3))
		}
		if worst > 1e-9 {
			t.Errorf("%s: λ = 1e12 leaves x %g away from μ = −0.3", o.name, worst)
		}
	}
}

// An explicit λ equal to σ²/σ_x² gives the default's result bit for bit; signal_var moves
// λ; Poisson noise of rate r acts as Gaussian noise of variance 2/(255 r).
func TestWienerLambdaSources(t *testing.T) {
	o := ops(t)[2]
	p, _ := problem(t, o, 2, dtypes.Float64, 0.05)
	_, def := solve(t, "wiener", p, nil)
	_, explicit := solve(t, "wiener", p, map[string]any{"lambda": 0.05 * 0.05 / 0.25})
	_, sx := solve(t, "wiener", p, map[string]any{"signal_var": 0.5})
	_, sxLambda := solve(t, "wiener", p, map[string]any{"lambda": 0.05 * 0.05 / 0.5})
	for i := range def {
		if def[i] != explicit[i] || sx[i] != sxLambda[i] {
			t.Fatalf("value %d: default %v vs explicit λ %v; signal_var 0.5 %v vs its λ %v", i, def[i], explicit[i], sx[i], sxLambda[i])
		}
	}
	pois, _ := noise.NewPoisson(2)
	p.Noise = pois
	_, xp := solve(t, "wiener", p, nil)
	gauss, _ := noise.NewGaussian(math.Sqrt(2 / (255 * 2.0)))
	p.Noise = gauss
	_, xg := solve(t, "wiener", p, nil)
	for i := range xp {
		if math.Abs(xp[i]-xg[i]) > 1e-12 {
			t.Fatalf("value %d: Poisson %v, Gaussian of the same variance %v", i, xp[i], xg[i])
		}
	}
}

// laplace is a noise model whose variance the wiener solver does not know.
type laplace struct{}

func (laplace) Name() string                                                  { return "laplace" }
func (laplace) Measure(ax *tensors.Tensor, _ uint64) (*tensors.Tensor, error) { return ax, nil }
func (laplace) Distance(y, ax *graph.Node) *graph.Node {
	return graph.ReduceSum(graph.Abs(graph.Sub(y, ax)), 1, 2, 3)
}

// Problems without the capability are refused before any work, naming solver and operator.
func TestRefusals(t *testing.T) {
	pr, _ := operator.NewPhaseRetrieval(2)
	nm, _ := noise.NewGaussian(0.05)
	p := &solver.Problem{Operator: pr, Noise: nm, Backend: backend(t), XShape: shapes.Make(dtypes.Float64, 1, 1, 4, 4)}
	for name, want := range map[string]string{
		"pinv":   "solver pinv needs the operator's pseudo-inverse, which phase_retrieval does not offer",
		"wiener": "solver wiener needs the operator's svd, which phase_retrieval does not offer",
	} {
		s, _ := solver.Lookup(name)
		err := solver.Check(s, p, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on phase retrieval: %v, want %q", name, err, want)
		}
		_, err = solver.Solve(context.Background(), s, p, nil, 0, solver.Hooks{})
		if err == nil {
			t.Errorf("%s on phase retrieval without y solved", name)
		}
	}
	// An operator without an SVD but with an adjoint (motion blur) is refused too.
	motion, _ := operator.NewMotionBlur(3, 0.5, 1)
	p.Operator = motion
	s, _ := solver.Lookup("wiener")
	if err := solver.Check(s, p, nil); err == nil || !strings.Contains(err.Error(), "solver wiener needs the operator's svd") {
		t.Errorf("wiener on motion blur: %v", err)
	}
	// λ from the noise needs a known variance; an explicit λ does not.
	o := ops(t)[1]
	p, _ = problem(t, o, 1, dtypes.Float64, 0.05)
	p.Noise = laplace{}
	params, _ := solver.Resolve(s, nil)
	if err := solver.Check(s, p, params); err == nil || !strings.Contains(err.Error(), "solver wiener: param lambda is 0 (from the noise), but the variance of laplace noise is unknown") {
		t.Errorf("wiener with laplace noise, λ from the noise: %v", err)
	}
	if _, x := solve(t, "wiener", p, map[string]any{"lambda": 0.01}); len(x) != 32 {
		t.Errorf("wiener with laplace noise and λ = 0.01: %d values", len(x))
	}
}

// Bad parameters are refused by Resolve, naming solver and parameter.
func TestParamErrors(t *testing.T) {
	w, _ := solver.Lookup("wiener")
	pinv, _ := solver.Lookup("pinv")
	for _, c := range []struct {
		s     solver.Solver
		given map[string]any
		want  string
	}{
		{w, map[string]any{"lambda": -1.0}, "solver wiener: param lambda: -1 must be ≥ 0"},
		{w, map[string]any{"lambda": "abc"}, "solver wiener: param lambda: \"abc\" is not a number"},
		{w, map[string]any{"signal_var": 0}, "solver wiener: param signal_var: 0 must be > 0"},
		{w, map[string]any{"mean": math.NaN()}, "solver wiener: param mean: NaN is not a finite number"},
		{w, map[string]any{"sigma": 1}, "solver wiener: unknown param sigma (params: lambda, mean, signal_var)"},
		{pinv, map[string]any{"lambda": 1}, "solver pinv: unknown param lambda"},
	} {
		_, err := solver.Resolve(c.s, c.given)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.given, err, c.want)
		}
	}
	if _, err := solver.Resolve(w, map[string]any{"lambda": "0.5", "mean": -1, "signal_var": 0.1}); err != nil {
		t.Errorf("valid params: %v", err)
	}
}

// The one step runs through solver.Loop: progress and snapshot hooks fire once and no
// checkpoint is written (Loop writes none after the last step), a resume from step 0 gives
// the same bits, a resume past the end and a cancelled context are refused, a NaN in y is
// a DivergedError, and a y of the wrong shape is an error.
func TestLoopHooks(t *testing.T) {
	o := ops(t)[2]
	for _, name := range []string{"pinv", "wiener"} {
		p, _ := problem(t, o, 2, dtypes.Float64, 0.05)
		s, _ := solver.Lookup(name)
		params, _ := solver.Resolve(s, nil)
		run, err := s.Prepare(p, params)
		if err != nil {
			t.Fatal(err)
		}
		var progress []int
		var snap []float64
		checkpoints := 0
		res, err := run.Solve(context.Background(), p.Y, 0, solver.Hooks{
			Progress:      func(done, total int, dist []float64) { progress = append(progress, done, total, len(dist)) },
			SnapshotEvery: 1, Snapshot: func(done int, x, _ *tensors.Tensor) { snap = tensors.MustCopyFlatData[float64](x) },
			CheckpointEvery: 1, Checkpoint: func(solver.State) error { checkpoints++; return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if checkpoints != 0 {
			t.Errorf("%s: %d checkpoints in a one-step run (Loop writes none after the last step)", name, checkpoints)
		}
		x := tensors.MustCopyFlatData[float64](res.X)
		if len(progress) != 3 || progress[0] != 1 || progress[1] != 1 || progress[2] != 2 {
			t.Errorf("%s: progress calls %v, want one (1, 1, 2 distances)", name, progress)
		}
		for i := range x {
			if snap == nil || math.Float64bits(snap[i]) != math.Float64bits(x[i]) {
				t.Fatalf("%s: the snapshot differs from the result", name)
			}
		}
		resumed, err := run.Solve(context.Background(), p.Y, 9, solver.Hooks{Resume: &solver.State{X: tensors.FromShape(p.XShape)}})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range tensors.MustCopyFlatData[float64](resumed.X) {
			if math.Float64bits(v) != math.Float64bits(x[i]) {
				t.Fatalf("%s: resumed value %d is %v, want %v", name, i, v, x[i])
			}
		}
		if _, err := run.Solve(context.Background(), p.Y, 0, solver.Hooks{Resume: &solver.State{Done: 1, X: res.X}}); err == nil {
			t.Errorf("%s: a resume at the last step was accepted", name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := run.Solve(ctx, p.Y, 0, solver.Hooks{}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: cancelled run returned %v", name, err)
		}
		// A non-finite y makes a non-finite x: the loop stops with a DivergedError.
		yNaN := tensors.MustCopyFlatData[float64](p.Y)
		yNaN[3] = math.NaN()
		var div *solver.DivergedError
		if _, err := run.Solve(context.Background(), tensors.FromFlatDataAndDimensions(yNaN, p.Y.Shape().Dimensions...), 0, solver.Hooks{}); !errors.As(err, &div) || div.Step != 0 || div.Timestep != -1 {
			t.Errorf("%s: NaN in y gave %v, want a DivergedError at step 1", name, err)
		}
		bad := tensors.FromShape(shapes.Make(dtypes.Float64, 2, 1, 3, 3))
		if _, err := run.Solve(context.Background(), bad, 0, solver.Hooks{}); err == nil || !strings.Contains(err.Error(), "solver "+name+": measurement y has shape") {
			t.Errorf("%s: wrong y shape: %v", name, err)
		}
	}
}

// Both are classical: no prior, listed with their needs.
func TestInfo(t *testing.T) {
	for name, need := range map[string]string{"pinv": "pseudo-inverse", "wiener": "svd"} {
		s, err := solver.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		info := s.Info()
		if info.NeedsPrior || len(info.NeedNames()) != 1 || info.NeedNames()[0] != need || info.Doc == "" {
			t.Errorf("%s: info %+v", name, info)
		}
	}
}

// An operator written as functions (a notebook's) offers what it declares: a declared
// pseudo-inverse serves pinv, and wiener is refused for the missing SVD.
func TestFuncOperatorDeclarations(t *testing.T) {
	double, err := operator.FromFunc(operator.Func{Name: "double",
		Apply:         func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 2) },
		PseudoInverse: func(y *graph.Node) *graph.Node { return graph.MulScalar(y, 0.5) }})
	if err != nil {
		t.Fatal(err)
	}
	p, y := problem(t, testOp{"double", double, 1, 2, 2}, 2, dtypes.Float64, 0.05)
	res, x := solve(t, "pinv", p, nil)
	for i := range x {
		if x[i] != y[i]/2 {
			t.Fatalf("x[%d] = %v, want y/2 = %v", i, x[i], y[i]/2)
		}
	}
	if res.Distances[0] != 0 || res.Distances[1] != 0 {
		t.Errorf("distances %v, want 0", res.Distances)
	}
	w, _ := solver.Lookup("wiener")
	if err := solver.Check(w, p, nil); err == nil || !strings.Contains(err.Error(), "solver wiener needs the operator's svd, which double does not offer (it has: pseudo-inverse)") {
		t.Errorf("wiener on a pseudo-inverse-only operator: %v", err)
	}
}
