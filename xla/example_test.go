package xla_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// The embedded backend differentiates through a strided convolution, which GoMLX's plain
// pure-Go backend cannot (its gradient needs Reverse and Pad).
func ExampleNew() {
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	// d/dx Σ conv(x, k) for a 3×3 all-ones kernel, stride 2: how many output windows
	// cover each pixel.
	exec, err := graph.NewExec(backend, func(x *graph.Node) *graph.Node {
		k := graph.OnesLike(graph.Slice(x, graph.AxisRange(0, 1), graph.AxisRange(0, 1), graph.AxisRange(0, 3), graph.AxisRange(0, 3)))
		y := graph.Convolve(x, k).ChannelsAxis(images.ChannelsFirst).Strides(2).NoPadding().Done()
		return graph.Gradient(graph.ReduceAllSum(y), x)[0]
	})
	if err != nil {
		panic(err)
	}
	x := tensors.FromFlatDataAndDimensions(make([]float64, 25), 1, 1, 5, 5)
	fmt.Println(exec.MustExec1(x).Value())
	// Output: [[[[1 1 2 1 1] [1 1 2 1 1] [2 2 4 2 2] [1 1 2 1 1] [1 1 2 1 1]]]]
}
