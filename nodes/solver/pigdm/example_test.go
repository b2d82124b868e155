package pigdm_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/pigdm"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// ΠGDM on a 2×2 image with a unit-variance Gaussian prior N(0, I), measured by its mean
// (2× average pooling) with σ_y = 0.05: y = 1.2. With unit variances ΠGDM's likelihood is
// exact, and with weight=exact each step is DDIM on the exact conditional score, so the 300
// samples follow the posterior up to the discretisation: their mean pixel is the posterior's.
func Example() {
	backend, _ := xla.New("embedded")
	sched := schedule.Default()
	gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{{0, 0, 0, 0}}, [][]float64{{1, 1, 1, 1}}, []int{1, 2, 2})
	op, _ := operator.NewAvgPoolSR(2)
	nm, _ := noise.NewGaussian(0.05)
	const n = 300
	y := make([]float64, n)
	for i := range y {
		y[i] = 1.2
	}
	p := &solver.Problem{Prior: gauss, Schedule: sched, Operator: op, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(y, n, 1, 1, 1), XShape: shapes.Make(dtypes.Float64, n, 1, 2, 2)}
	res, err := solver.Solve(context.Background(), pigdm.New(), p, map[string]any{"weight": "exact"}, 1, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	var mean float64
	for _, v := range x {
		mean += v / float64(len(x))
	}
	a := [][]float64{{0.25, 0.25, 0.25, 0.25}}
	post, _ := prior.GaussianPosterior([]float64{0, 0, 0, 0}, []float64{1, 1, 1, 1}, a, []float64{1.2}, 0.05)
	fmt.Printf("%s: %d network evaluations per sample\n", pigdm.Name, res.NFE)
	fmt.Printf("mean pixel %.2f, posterior %.2f, finite %v\n", mean, post[0], !math.IsNaN(mean))
	// Output:
	// pigdm: 100 network evaluations per sample
	// mean pixel 1.19, posterior 1.19, finite true
}
