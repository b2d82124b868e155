package operator

// BenchmarkOperators times one DPS-shaped use of each operator at its reference settings on
// a 64×64 RGB float32 image on the embedded backend: A(x), the loss ‖y − A(x)‖² and its
// gradient w.r.t. x, in one compiled graph.
//
//	go test ./nodes/operator -run XXX -bench Operators

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func BenchmarkOperators(b *testing.B) {
	const n = 64
	for _, task := range []struct {
		name   string
		params map[string]any
	}{
		{"inpainting", map[string]any{"mask_type": "box"}},
		{"inpainting", map[string]any{"mask_type": "random"}},
		{"super_resolution", nil},
		{"avgpool_sr", nil},
		{"gaussian_blur", nil},
		{"motion_blur", nil},
		{"phase_retrieval", nil},
		{"nonlinear_blur", nil},
	} {
		label := task.name
		if task.params != nil {
			label += "/" + task.params["mask_type"].(string)
		}
		b.Run(label, func(b *testing.B) {
			op, err := New(task.name, n, n, task.params, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			random := func(dims ...int) *tensors.Tensor {
				v := make([]float32, size(dims))
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return tensors.FromFlatDataAndDimensions(v, dims...)
			}
			x := random(1, 3, n, n)
			y := random(measShape(b, op, 1, 3, n, n)...)
			exec, err := graph.NewExec(testBackend(), func(x, y *graph.Node) []*graph.Node {
				loss := graph.ReduceAllSum(graph.Square(graph.Sub(y, op.Apply(x))))
				return []*graph.Node{loss, graph.Gradient(loss, x)[0]}
			})
			if err != nil {
				b.Fatal(err)
			}
			exec.MustExec(x, y) // compile
			b.ResetTimer()
			for range b.N {
				for _, t := range exec.MustExec(x, y) {
					t.FinalizeAll()
				}
			}
		})
	}
}
