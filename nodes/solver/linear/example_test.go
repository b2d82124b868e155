package linear_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/linear"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Wiener with λ from the noise (σ²/σ_x²) is the exact posterior mean of the Gaussian prior
// N(μ, σ_x² I): here for 2× average pooling of two 4×4 images, checked against
// prior.GaussianPosterior on the 4×16 matrix of the pooling.
func ExampleWiener() {
	backend, _ := xla.New("embedded")
	pool, _ := operator.NewAvgPoolSR(2)
	const sigma, mu = 0.05, 0.2
	gauss, _ := noise.NewGaussian(sigma)
	y := []float64{0.5, -0.25, 0.75, 0, -0.5, 0.1, 0.3, 0.9} // two 1×2×2 measurements
	p := &solver.Problem{Operator: pool, Noise: gauss, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(y, 2, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, 2, 1, 4, 4)}
	res, err := solver.Solve(context.Background(), linear.Wiener{}, p, map[string]any{"mean": mu}, 0, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)

	// The pooling as a matrix: measurement (i, j) averages pixels (2i + a, 2j + b).
	a := make([][]float64, 4)
	for r := range a {
		a[r] = make([]float64, 16)
		i, j := r/2, r%2
		for d := range 4 {
			a[r][(2*i+d/2)*4+2*j+d%2] = 0.25
		}
	}
	means, vars := make([]float64, 16), make([]float64, 16)
	for k := range means {
		means[k], vars[k] = mu, linear.DefaultSignalVar
	}
	worst := 0.0
	for b := range 2 {
		post, _ := prior.GaussianPosterior(means, vars, a, y[4*b:4*b+4], sigma)
		for k := range 16 {
			worst = max(worst, math.Abs(x[16*b+k]-post[k]))
		}
	}
	fmt.Println("network evaluations:", res.NFE, "— distances:", len(res.Distances))
	fmt.Println("max difference to the exact posterior mean < 1e-9:", worst < 1e-9)
	// Output:
	// network evaluations: 0 — distances: 2
	// max difference to the exact posterior mean < 1e-9: true
}

// The pseudo-inverse takes the measurement back: for 2× pooling A A⁺ y = y, and A⁺y
// spreads each measured value over its 2×2 block.
func ExamplePinv() {
	backend, _ := xla.New("embedded")
	pool, _ := operator.NewAvgPoolSR(2)
	gauss, _ := noise.NewGaussian(0.05)
	y := []float64{0.5, -0.25, 0.75, 0}
	p := &solver.Problem{Operator: pool, Noise: gauss, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(y, 1, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, 1, 1, 4, 4)}
	res, err := solver.Solve(context.Background(), linear.Pinv{}, p, nil, 0, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	for r := range 4 {
		fmt.Printf("%5.2f\n", x[4*r:4*r+4])
	}
	fmt.Printf("‖y − A A⁺y‖ < 1e-12: %v\n", res.Distances[0] < 1e-12)
	// Output:
	// [ 0.50  0.50 -0.25 -0.25]
	// [ 0.50  0.50 -0.25 -0.25]
	// [ 0.75  0.75  0.00  0.00]
	// [ 0.75  0.75  0.00  0.00]
	// ‖y − A A⁺y‖ < 1e-12: true
}
