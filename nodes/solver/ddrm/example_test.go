package ddrm_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/ddrm"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// DDRM on a 2×2 image with a Gaussian prior N(0, 0.25 I): pixels 0 and 3 are observed with
// noise σ = 0.05 (inpainting: singular values 1, 1, 0, 0). With 256 samples, the sample mean
// closes most of the gap between the prior mean and the exact posterior mean; the unobserved
// pixels stay at the prior mean 0.
func Example() {
	backend, _ := xla.New("embedded")
	sched := schedule.Default()
	gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{{0, 0, 0, 0}}, [][]float64{{0.25, 0.25, 0.25, 0.25}}, []int{1, 2, 2})
	mask := []float64{1, 0, 0, 1}
	op, _ := operator.NewMaskInpainting(mask, 2, 2)
	nm, _ := noise.NewGaussian(0.05)
	y1 := []float64{0.6, 0, 0, -0.4}
	const n = 256
	y := make([]float64, 0, 4*n)
	for range n {
		y = append(y, y1...)
	}
	p := &solver.Problem{Prior: gauss, Schedule: sched, Operator: op, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(y, n, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, n, 1, 2, 2)}
	res, err := solver.Solve(context.Background(), ddrm.New(), p, nil, 1, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	mean := make([]float64, 4)
	for i, v := range x {
		mean[i%4] += v / n
	}
	A := [][]float64{{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1}}
	post, _ := prior.GaussianPosterior([]float64{0, 0, 0, 0}, []float64{0.25, 0.25, 0.25, 0.25}, A, y1, 0.05)
	var gap, scale float64
	for i := range mean {
		gap += (mean[i] - post[i]) * (mean[i] - post[i])
		scale += post[i] * post[i]
	}
	fmt.Println(ddrm.Name, "network evaluations:", res.NFE)
	fmt.Printf("gap closed ≈ %.1f\n", 1-math.Sqrt(gap/scale))
	fmt.Printf("unobserved pixels' mean ≈ %.1f, %.1f\n", math.Abs(mean[1]), math.Abs(mean[2]))
	// Output:
	// ddrm network evaluations: 20
	// gap closed ≈ 0.9
	// unobserved pixels' mean ≈ 0.0, 0.0
}
