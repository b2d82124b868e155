package noise_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Measure on the host from a seed, then compare a candidate A(x̂0) with y in a graph, one
// norm per sample.
func ExampleNewGaussian() {
	model, err := noise.NewGaussian(0.05) // [-1, 1] units: 0.025 in [0, 1] units
	if err != nil {
		panic(err)
	}
	ax := tensors.FromFlatDataAndDimensions([]float64{0.1, 0.2, 0.3, 0.4}, 2, 2)
	y, err := model.Measure(ax, 1)
	if err != nil {
		panic(err)
	}
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	exec, err := graph.NewExec(backend, model.Distance)
	if err != nil {
		panic(err)
	}
	fmt.Printf("y = %.4f\n", tensors.MustCopyFlatData[float64](y))
	fmt.Printf("‖y − ax‖ per sample = %.4f\n", tensors.MustCopyFlatData[float64](exec.MustExec1(y, ax)))
	fmt.Printf("‖y − y‖ per sample = %.4f\n", tensors.MustCopyFlatData[float64](exec.MustExec1(y, y)))
	// Output:
	// y = [0.1405 0.1349 0.2410 0.3390]
	// ‖y − ax‖ per sample = [0.0767 0.0849]
	// ‖y − y‖ per sample = [0.0000 0.0000]
}

// The Poisson likelihood forms on the same measurement: a dark pixel with zero counts
// (y = −1) that the estimate puts at 0.1 intensity, and a bright one.
func ExampleNewPoissonForm() {
	y := tensors.FromFlatDataAndDimensions([]float64{-1, 0.6}, 1, 2)
	ax := tensors.FromFlatDataAndDimensions([]float64{-0.8, 0.5}, 1, 2)
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	for _, form := range noise.PoissonForms {
		model, err := noise.NewPoissonForm(1, form, 0) // rate 1, floor 1 count
		if err != nil {
			panic(err)
		}
		exec, err := graph.NewExec(backend, model.Distance)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-9s %.4f\n", form, tensors.MustCopyFlatData[float64](exec.MustExec1(y, ax)))
	}
	// Output:
	// paper     [2.2597]
	// reference [0.2981]
	// plain     [0.2236]
	// model     [0.4546]
	// nll       [0.6376]
}
