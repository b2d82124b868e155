package prior_test

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// A two-component prior on 2-D points predicts ε exactly, so Tweedie's x̂0 computed from the
// graph equals the host's E[x_0 | x_t].
func ExampleGaussianMixture() {
	sched := schedule.Default()
	gm, err := prior.NewGaussianMixture(sched, []float64{0.7, 0.3},
		[][]float64{{1, 1}, {-1, 0}}, [][]float64{{0.05, 0.05}, {0.1, 0.2}}, []int{2})
	if err != nil {
		panic(err)
	}
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	exec, err := graph.NewExec(backend, func(xt, t *graph.Node) *graph.Node {
		eps, _ := gm.Predict(xt, t)
		return eps
	})
	if err != nil {
		panic(err)
	}
	const step = 400
	xt := []float64{0.2, 0.1}
	eps := tensors.MustCopyFlatData[float64](exec.MustExec1(
		tensors.FromFlatDataAndDimensions(xt, 1, 2), tensors.FromFlatDataAndDimensions([]int32{step}, 1)))
	a := sched.AlphaBars[step]
	x0 := []float64{(xt[0] - math.Sqrt(1-a)*eps[0]) / math.Sqrt(a), (xt[1] - math.Sqrt(1-a)*eps[1]) / math.Sqrt(a)}
	fmt.Printf("Tweedie from ε̂: %.6f\n", x0)
	fmt.Printf("E[x0 | xt]:     %.6f\n", gm.PosteriorMean(xt, step))
	fmt.Printf("prior mean:     %.6f\n", gm.Mean())
	// Output:
	// Tweedie from ε̂: [0.473647 0.730706]
	// E[x0 | xt]:     [0.473647 0.730706]
	// prior mean:     [0.400000 0.700000]
}
