package train_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/dpsflow/dpsflow/nodes/train"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomlxctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// scale is ε̂ = a·x_t + b with per-channel weights in scope "/head": state-dict names
// "head.a" and "head.b".
type scale struct{}

func (scale) Forward(ctx *gomlxctx.Context, xt, _ *graph.Node) (eps, v *graph.Node) {
	ctx = ctx.In("head")
	c := xt.Shape().Dimensions[1]
	a := ctx.VariableWithShape("a", shapes.Make(xt.DType(), 1, c, 1, 1)).ValueGraph(xt.Graph())
	b := ctx.VariableWithShape("b", shapes.Make(xt.DType(), 1, c, 1, 1)).ValueGraph(xt.Graph())
	return graph.Add(graph.Mul(xt, a), b), nil
}

func Example() {
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) train.Images { // stand-in data: 4×4 images of uniform noise
		im := train.Images{N: n, C: 1, H: 4, W: 4, Pixels: make([]float32, n*16)}
		for i := range im.Pixels {
			im.Pixels[i] = float32(rng.Float64()*2 - 1)
		}
		return im
	}
	dir, _ := os.MkdirTemp("", "train-example")
	defer os.RemoveAll(dir)
	tr, err := train.New(backend, scale{}, noise(64), noise(16), train.Config{
		OutDir: dir, Steps: 50, BatchSize: 8, LR: 1e-2, EMADecay: 0.9, Quiet: true,
		Export: func(path string, w map[string]*tensors.Tensor, meta map[string]string) error {
			var names []string
			for name := range w {
				names = append(names, name)
			}
			slices.Sort(names)
			fmt.Println("export", names, "weights:", meta["dpsflow.weights"])
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := tr.Run(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("steps", res.Steps, "held-out loss below 1:", res.HeldOutLoss < 1)
	// Output:
	// export [head.a head.b] weights: ema
	// steps 50 held-out loss below 1: true
}
