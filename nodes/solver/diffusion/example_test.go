package diffusion_test

import (
	"context"
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A diffusion solver in a dozen lines: deterministic DDIM that ignores y, on a prior whose
// every sample is 0.5 (variance 0), so that any start lands on 0.5.
func ExamplePrepare() {
	be, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	gmm, _ := prior.NewGaussianMixture(schedule.Default(), []float64{1}, [][]float64{{0.5}}, [][]float64{{0}}, []int{1, 1, 1})
	nm, _ := noise.NewGaussian(0.05)
	p := &solver.Problem{Prior: gmm, Operator: operator.NewIdentity(), Noise: nm, Backend: be,
		Y: tensors.FromFlatDataAndDimensions([]float64{0.5, 0.5}, 2, 1, 1, 1), XShape: shapes.Make(dtypes.Float64, 2, 1, 1, 1)}
	sched, _ := diffusion.Schedule(p, 10, "even")
	m := diffusion.NewModel(gmm, sched)
	run, err := diffusion.Prepare(diffusion.Spec{Name: "ddim-unconditional", Problem: p, Steps: 10, NFE: 10,
		Step: func(s *diffusion.Step) diffusion.Out {
			x0, eps := m.Tweedie(s, s.X, false)
			// x_{t−1} = √ᾱ_{t−1} x̂0 + √(1 − ᾱ_{t−1}) ε̂
			prev := s.At(m.AlphaBarPrev)
			next := Add(Mul(Sqrt(prev), x0), Mul(Sqrt(OneMinus(prev)), eps))
			return diffusion.Out{X: next, Estimate: x0}
		}})
	if err != nil {
		panic(err)
	}
	res, err := run.Solve(context.Background(), p.Y, 1, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("NFE %d, x = %.3f\n", res.NFE, tensors.MustCopyFlatData[float64](res.X))
	// Output: NFE 10, x = [0.500 0.500]
}
