package diffpir_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffpir"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// DiffPIR on a 4×4 Gaussian prior measured by 2×2 average pooling with σ = 0.05 noise: 128
// samples for one measurement, with the default 100 steps (one network evaluation each),
// and how much of the way from the prior mean to the exact posterior mean their mean goes.
func Example() {
	backend, _ := xla.New("embedded")
	sched := schedule.Default()
	mean, vars := make([]float64, 16), make([]float64, 16)
	for i := range mean {
		mean[i], vars[i] = 0.3*math.Sin(float64(i)), 0.1
	}
	gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{1, 4, 4})
	pool, _ := operator.NewAvgPoolSR(2)
	nm, _ := noise.NewGaussian(0.05)
	y := []float64{0.5, -0.2, 0.1, 0.4}

	const n = 128
	ys := make([]float64, 0, 4*n)
	for range n {
		ys = append(ys, y...)
	}
	p := &solver.Problem{Prior: gauss, Schedule: sched, Operator: pool, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(ys, n, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, n, 1, 4, 4)}
	res, err := solver.Solve(context.Background(), diffpir.New(), p, nil, 1, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)

	// The exact posterior, with A as a matrix: each y averages one 2×2 block.
	a := make([][]float64, 4)
	for j := range a {
		a[j] = make([]float64, 16)
		bi, bj := 2*(j/2), 2*(j%2)
		for _, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
			a[j][4*(bi+d[0])+bj+d[1]] = 0.25
		}
	}
	post, _ := prior.GaussianPosterior(mean, vars, a, y, 0.05)
	num, den := 0.0, 0.0
	for j := range 16 {
		m := 0.0
		for i := range n {
			m += x[16*i+j] / n
		}
		num += (m - post[j]) * (m - post[j])
		den += (mean[j] - post[j]) * (mean[j] - post[j])
	}
	fmt.Println("solver:", diffpir.New().Info().Name, "NFE:", res.NFE)
	fmt.Printf("gap closed to the posterior mean: %.1f\n", 1-math.Sqrt(num/den))
	// Output:
	// solver: diffpir NFE: 100
	// gap closed to the posterior mean: 0.9
}
