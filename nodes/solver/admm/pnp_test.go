package admm_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/admm"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// gaussProblem is 2 samples of 1×4×4 under the identity with a one-component Gaussian
// prior N(mean, vars) per pixel.
func gaussProblem(t *testing.T) (p *solver.Problem, mean, vars, y []float64) {
	t.Helper()
	sched := schedule.Default()
	mean, vars = make([]float64, 16), make([]float64, 16)
	for i := range mean {
		mean[i], vars[i] = 0.3*math.Sin(float64(i)), 0.02+0.03*float64(i%3)
	}
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{1, 4, 4})
	if err != nil {
		t.Fatal(err)
	}
	y = make([]float64, 32)
	for i := range y {
		y[i] = 0.5 * math.Cos(1.7*float64(i))
	}
	nm, _ := noise.NewGaussian(0.05)
	return &solver.Problem{Prior: gmm, Schedule: sched, Operator: operator.NewIdentity(), Noise: nm, Backend: backend(t),
		Y: tensors.FromFlatDataAndDimensions(y, 2, 1, 4, 4), XShape: shapes.Make(dtypes.Float64, 2, 1, 4, 4)}, mean, vars, y
}

// With A = I and a Gaussian prior, the Tweedie denoiser at level σ is linear, and PnP-ADMM's
// fixed point is the MAP of ½‖x − y‖² + ρσ²/(2s²)‖x − μ‖²: x = (y + ρkμ)/(1 + ρk), k = σ²/s².
func TestPnPADMMGaussianFixedPoint(t *testing.T) {
	p, mean, vars, y := gaussProblem(t)
	const rho, sigma, iters = 0.5, 0.1, 80
	i := admm.TweedieStep(p.Schedule, sigma)
	ab := p.Schedule.AlphaBars[i]
	sigT := math.Sqrt((1 - ab) / ab)
	s, err := solver.Lookup("pnp-admm")
	if err != nil {
		t.Fatal(err)
	}
	res, err := solver.Solve(context.Background(), s, p, map[string]any{"rho": rho, "sigma": sigma, "iters": iters}, 0, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float64](res.X)
	maxErr, mseY, mseX := 0.0, 0.0, 0.0
	for j := range got {
		k := sigT * sigT / vars[j%16]
		want := (y[j] + rho*k*mean[j%16]) / (1 + rho*k)
		maxErr = math.Max(maxErr, math.Abs(got[j]-want))
		mseY += (y[j] - want) * (y[j] - want)
		mseX += (got[j] - want) * (got[j] - want)
	}
	t.Logf("Tweedie at step %d (σ_t = %.4f for sigma %g): max |x − closed form| = %.3g after %d iterations; ‖y − x*‖² = %.3g", i, sigT, sigma, maxErr, iters, mseY)
	if math.Abs(sigT-sigma) > 0.002 || maxErr > 1e-9 || mseY < 1e-2 {
		t.Errorf("σ_t %g, max error %g, ‖y − x*‖² %g", sigT, maxErr, mseY)
	}
	if res.NFE != iters || len(res.Distances) != 2 {
		t.Errorf("NFE %d, %d distances", res.NFE, len(res.Distances))
	}
}

// PnP with a Go denoiser (here the exact Gaussian MMSE denoiser at the given σ) needs no
// prior and reaches the same closed form with σ itself.
func TestPnPHook(t *testing.T) {
	p, mean, vars, y := gaussProblem(t)
	p.Prior = nil
	s := admm.PnP("my-pnp", func(v *graph.Node, sigma float64) *graph.Node {
		g := v.Graph()
		m := graph.Const(g, tensors.FromFlatDataAndDimensions(mean, 1, 1, 4, 4).Value())
		s2 := graph.Const(g, tensors.FromFlatDataAndDimensions(vars, 1, 1, 4, 4).Value())
		num := graph.Add(graph.Mul(s2, v), graph.MulScalar(m, sigma*sigma))
		return graph.Div(num, graph.AddScalar(s2, sigma*sigma))
	})
	if info := s.Info(); info.Name != "my-pnp" || info.NeedsPrior {
		t.Fatalf("info %+v", info)
	}
	const rho, sigma = 2.0, 0.2
	res, err := solver.Solve(context.Background(), s, p, map[string]any{"rho": rho, "sigma": sigma, "iters": 100}, 0, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float64](res.X)
	for j := range got {
		k := sigma * sigma / vars[j%16]
		if want := (y[j] + rho*k*mean[j%16]) / (1 + rho*k); math.Abs(got[j]-want) > 1e-9 {
			t.Fatalf("x[%d] = %v, closed form %v", j, got[j], want)
		}
	}
	if res.NFE != 0 {
		t.Errorf("NFE %d for a Go denoiser", res.NFE)
	}
}

// Operators without data-prox and adjoint, and rho ≤ 0, are refused before any work.
func TestRefusals(t *testing.T) {
	p, _, _, _ := gaussProblem(t)
	pr, _ := operator.NewPhaseRetrieval(2)
	p.Operator, p.Y = pr, nil
	for _, name := range []string{"admm-tv", "pnp-admm"} {
		s, _ := solver.Lookup(name)
		params, err := solver.Resolve(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = solver.Check(s, p, params)
		want := "solver " + name + ": needs the operator's data-prox or, for a conjugate-gradient data step, its adjoint; phase_retrieval offers neither (it has: magnitude-projection)"
		if err == nil || err.Error() != want {
			t.Errorf("%s on phase retrieval: %v", name, err)
		}
		if _, err := s.Prepare(p, params); err == nil || !strings.Contains(err.Error(), "phase_retrieval offers neither") {
			t.Errorf("%s: Prepare on phase retrieval: %v", name, err)
		}
		for _, rho := range []any{0.0, -1.0, "0"} {
			if _, err := solver.Resolve(s, map[string]any{"rho": rho}); err == nil || !strings.Contains(err.Error(), "rho") {
				t.Errorf("%s with rho %v: %v", name, rho, err)
			}
		}
		params["rho"] = 0.0
		p.Operator = operator.NewIdentity()
		if _, err := s.Prepare(p, params); err == nil || !strings.Contains(err.Error(), "rho must be a positive number") {
			t.Errorf("%s: Prepare with rho 0: %v", name, err)
		}
		p.Operator = pr
	}
}

// A run resumed from a Loop checkpoint ends bit for bit where the whole run does.
func TestResumeBitExact(t *testing.T) {
	gp, _, _, _ := gaussProblem(t)
	sr, _ := operator.NewAvgPoolSR(2)
	tp := tvProblem(t, gp.Backend, sr)
	// A float32 copy of the TV problem checks the other dtype too.
	tp32 := *tp
	tp32.XShape = shapes.Make(dtypes.Float32, tp.XShape.Dimensions...)
	y64 := tensors.MustCopyFlatData[float64](tp.Y)
	y32 := make([]float32, len(y64))
	for i, v := range y64 {
		y32[i] = float32(v)
	}
	tp32.Y = tensors.FromFlatDataAndDimensions(y32, tp.Y.Shape().Dimensions...)
	for _, c := range []struct {
		name string
		p    *solver.Problem
	}{{"admm-tv", tp}, {"admm-tv", &tp32}, {"pnp-admm", gp}} {
		s, _ := solver.Lookup(c.name)
		params := map[string]any{"iters": 12}
		var cks []solver.State
		full, err := solver.Solve(context.Background(), s, c.p, params, 0, solver.Hooks{CheckpointEvery: 5,
			Checkpoint: func(st solver.State) error { cks = append(cks, st); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if len(cks) != 2 || cks[0].Done != 5 || cks[0].RNG != nil || len(cks[0].Aux) != 2 || cks[0].Aux[0].DType() != c.p.XShape.DType {
			t.Fatalf("%s: checkpoints %+v", c.name, cks)
		}
		res, err := solver.Solve(context.Background(), s, c.p, params, 0, solver.Hooks{Resume: &cks[0]})
		if err != nil {
			t.Fatal(err)
		}
		a, b := full.X.Value(), res.X.Value()
		switch a := a.(type) {
		case []float64:
			for i, v := range b.([]float64) {
				if math.Float64bits(v) != math.Float64bits(a[i]) {
					t.Fatalf("%s: resumed x[%d] = %v, whole run %v", c.name, i, v, a[i])
				}
			}
		case []float32:
			for i, v := range b.([]float32) {
				if math.Float32bits(v) != math.Float32bits(a[i]) {
					t.Fatalf("%s (float32): resumed x[%d] = %v, whole run %v", c.name, i, v, a[i])
				}
			}
		}
		if full.Distances[0] != res.Distances[0] {
			t.Errorf("%s: distances %v vs %v", c.name, full.Distances, res.Distances)
		}
	}
}
