package reddiff_test

import (
	"context"
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/fidelity"
	"github.com/dpsflow/dpsflow/nodes/solver/reddiff"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// RED-diff on the linear-Gaussian toy (a Gaussian prior on 4×4 images, ×2 average pooling,
// σ = 0.05): 64 runs of 100 steps for one measurement, one network evaluation per step and
// sample, and the fraction of the prior-mean → posterior-mean gap their mean closes.
func Example() {
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	g, err := fidelity.NewGaussian(backend, 64, 1)
	if err != nil {
		panic(err)
	}
	res, err := solver.Solve(context.Background(), reddiff.New(), g.Problem, map[string]any{"steps": 100}, 3, solver.Hooks{})
	if err != nil {
		panic(err)
	}
	flat := tensors.MustCopyFlatData[float64](res.X)
	samples := make([][]float64, 64)
	for i := range samples {
		samples[i] = flat[16*i : 16*i+16]
	}
	fmt.Println(reddiff.New().Info().Name, "NFE", res.NFE)
	fmt.Printf("gap closed ≈ %.1f\n", g.Score(samples).GapClosed)
	// Output:
	// reddiff NFE 100
	// gap closed ≈ 0.9
}
