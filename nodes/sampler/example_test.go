package sampler_test

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A 2-D Gaussian prior N(0, 0.25 I); we measure the first coordinate, y = 0.8, with
// σ = 0.05 noise, and draw DPS posterior samples. The exact posterior mean of x₁ is
// 0.8·0.25/(0.25+0.0025) ≈ 0.79; x₂ stays at its prior mean 0.
func ExampleSampler_Run() {
	backend, _ := xla.New("embedded")
	sched := schedule.Default()
	gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{{0, 0}}, [][]float64{{0.25, 0.25}}, []int{2})
	measureFirst := newMatrixOp([][]float64{{1, 0}})
	nm, _ := noise.NewGaussian(0.05)
	s, err := sampler.New(backend, gauss, sched, measureFirst, nm, sampler.Config{
		Steps:    250,
		Guidance: guidance.Config{Method: guidance.PS, Scale: 0.05},
	})
	if err != nil {
		panic(err)
	}
	const n = 500
	y := make([]float64, n)
	for i := range y {
		y[i] = 0.8
	}
	res, err := s.Run(context.Background(), tensors.FromFlatDataAndDimensions(y, n, 1), shapes.Make(dtypes.Float64, n, 2), 1, nil)
	if err != nil {
		panic(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	var m1, m2 float64
	for i := range n {
		m1 += x[2*i] / n
		m2 += x[2*i+1] / n
	}
	fmt.Printf("mean of x₁ ≈ %.1f; mean of x₂ near 0: %v\n", m1, math.Abs(m2) < 0.05)
	// Output: mean of x₁ ≈ 0.8; mean of x₂ near 0: true
}
