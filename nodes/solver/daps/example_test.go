package daps_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/daps"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// DAPS on a 2-D Gaussian prior N(0, 0.25 I), measuring x₁ = 0.8 with σ_y = 0.05: the exact
// posterior of x₁ has mean 0.25·0.8/(0.25 + 0.05²) ≈ 0.792 and standard deviation ≈ 0.050,
// x₂ stays N(0, 0.25). With the exact likelihood (tau=0) and a short schedule, DAPS's 400
// samples land near it (it approximates p(x0 | x_σ) by N(x̂0, σ²), so it is close, not exact).
func Example() {
	backend, _ := xla.New("embedded")
	sched := schedule.Default()
	gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{{0, 0}}, [][]float64{{0.25, 0.25}}, []int{2})
	first, _ := operator.FromFunc(operator.Func{Name: "first-coordinate",
		Apply: func(x *graph.Node) *graph.Node { return graph.Slice(x, graph.AxisRange(), graph.AxisRange(0, 1)) },
		Shape: func(x shapes.Shape) (shapes.Shape, error) { return shapes.Make(x.DType, x.Dimensions[0], 1), nil }})
	nm, _ := noise.NewGaussian(0.05)
	const n = 400
	y := make([]float64, n)
	for i := range y {
		y[i] = 0.8
	}
	p := &solver.Problem{Prior: gauss, Schedule: sched, Operator: first, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(y, n, 1), XShape: shapes.Make(dtypes.Float64, n, 2)}
	daps, _ := solver.Lookup("daps")
	res, err := solver.Solve(context.Background(), daps, p, map[string]any{
		"tau": 0, "annealing_steps": 20, "ode_steps": 5, "langevin_steps": 50, "lr": 1e-3, "lr_min_ratio": 0.1}, 7, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	var m1, v1, v2 float64
	for i := range n {
		m1 += x[2*i] / n
	}
	for i := range n {
		v1 += (x[2*i] - m1) * (x[2*i] - m1) / (n - 1)
		v2 += x[2*i+1] * x[2*i+1] / n
	}
	fmt.Printf("%s: %d network evaluations per sample\n", daps.Info().Name, res.NFE)
	fmt.Printf("mean of x₁ ≈ %.2f (exact 0.79), its std ≈ %.2f (exact 0.05), std of x₂ ≈ %.1f (exact 0.5)\n", m1, math.Sqrt(v1), math.Sqrt(v2))
	// Output:
	// daps: 100 network evaluations per sample
	// mean of x₁ ≈ 0.80 (exact 0.79), its std ≈ 0.05 (exact 0.05), std of x₂ ≈ 0.5 (exact 0.5)
}
