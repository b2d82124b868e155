package fidelity_test

import (
	"context"
	"math"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/builtin"
	"github.com/dpsflow/dpsflow/nodes/solver/fidelity"
	"github.com/dpsflow/dpsflow/xla"
)

// The scores are calibrated: exact posterior samples close the whole gap and match the
// covariance up to Monte-Carlo error; the prior's own samples (vanilla) close none of it and
// are wider than the posterior; the energy distance separates them.
func TestScoresAreCalibrated(t *testing.T) {
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	g, err := fidelity.NewGaussian(be, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a := g.A; len(a) != 4 || a[0][0] != 0.25 || a[0][1] != 0.25 || a[0][4] != 0.25 || a[0][2] != 0 || a[3][15] != 0.25 {
		t.Errorf("the pooling matrix: %v", a)
	}
	exact := g.Score(g.ExactSamples(n, 3))
	if exact.GapClosed < 0.95 || math.Abs(exact.CovRatio-1) > 0.05 || math.Abs(exact.MeasuredCovRatio-1) > 0.15 {
		t.Errorf("exact samples: gap closed %.3f, cov ratio %.3f", exact.GapClosed, exact.CovRatio)
	}
	vanilla, _ := solver.Lookup("vanilla")
	rows, err := fidelity.Run(context.Background(), be, []solver.Solver{vanilla}, fidelity.Options{N: n, Params: map[string]map[string]any{
		"vanilla": {"clip": false, "steps": 100}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", fidelity.Markdown(rows))
	v := rows[1]
	if v.Err != "" || math.Abs(v.Gaussian.GapClosed) > 0.1 || v.Gaussian.CovRatio < 1.1 || v.Gaussian.MeasuredCovRatio < 5 {
		t.Errorf("vanilla: %+v", v)
	}
	if floor := rows[0].Energy; floor > 0.01 || v.Energy < 10*floor {
		t.Errorf("energy: exact-vs-exact %.4f, vanilla %.4f", floor, v.Energy)
	}
	if d := fidelity.EnergyDistance([][]float64{{0, 0}}, [][]float64{{3, 4}}); d != 10 {
		t.Errorf("energy distance of two points 5 apart = %v, want 10", d)
	}
}

// Every diffusion solver runs on both problems at its defaults (clip off) and, except the
// prior's own samples, moves toward the posterior: the mixture's [B, 1, 1, 2] points and its
// 1×1 measurement are shapes no image task has. (mcg is exempt: its default step, scale 1,
// overshoots on these problems before each projection; at 0.1 it lands near the posterior,
// as notebooks/gmm-geometry.ipynb shows.)
func TestEveryDiffusionSolverRunsOnBothProblems(t *testing.T) {
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	var list []solver.Solver
	for _, s := range solver.List() {
		if s.Info().NeedsPrior {
			list = append(list, s)
		}
	}
	if len(list) < 10 {
		t.Fatalf("%d diffusion solvers registered, want the DPS family, pnp-admm and the five of nodes/solver/builtin", len(list))
	}
	rows, err := fidelity.Run(context.Background(), be, list, fidelity.Options{N: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", fidelity.Markdown(rows))
	for _, r := range rows[1:] {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Solver, r.Err)
			continue
		}
		if r.Solver != "vanilla" && r.Solver != "mcg" && r.Gaussian.GapClosed < 0.3 {
			t.Errorf("%s closes %.2f of the gap to the posterior mean", r.Solver, r.Gaussian.GapClosed)
		}
	}
}
