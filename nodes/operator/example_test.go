package operator_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Build the reference's ×4 super-resolution operator by its YAML name, measure a 32×32
// image and map the measurement back with the adjoint. Output pixel x (1-based) looks at
// input coordinate u = 4x − 1.5, so a ramp 0 … 31 gives u − 1 wherever the 16-tap support
// stays inside the image; near the borders the mirrored ramp pulls the values inwards.
func ExampleNew() {
	backend, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	op, err := operator.New("super_resolution", 32, 32, map[string]any{"scale_factor": 4}, 0)
	if err != nil {
		panic(err)
	}
	sr := op.(operator.Linear)
	ramp := make([]float64, 32*32) // 0 … 31 along every row
	for i := range ramp {
		ramp[i] = float64(i % 32)
	}
	exec, err := graph.NewExec(backend, func(x *graph.Node) []*graph.Node {
		y := sr.Apply(x)
		return []*graph.Node{y, sr.Adjoint(y)}
	})
	if err != nil {
		panic(err)
	}
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(ramp, 1, 1, 32, 32))
	fmt.Println("y shape:", out[0].Shape().Dimensions, "Aᵀy shape:", out[1].Shape().Dimensions)
	fmt.Printf("first row of y: %.4f\n", tensors.MustCopyFlatData[float64](out[0])[:8])

	_, err = operator.New("gaussian_blur", 64, 64, map[string]any{"intensity": 0.0}, 0)
	fmt.Println(err)
	// Output:
	// y shape: [1 1 8 8] Aᵀy shape: [1 1 32 32]
	// first row of y: [1.3599 5.4839 9.5000 13.5000 17.5000 21.5000 25.5161 29.6401]
	// gaussian_blur: intensity (sigma) 0 must be positive
}

// A solver asks for capabilities, not types: Require names the solver, the operator, what
// is missing and what the operator has.
func ExampleRequire() {
	pr, _ := operator.New("phase_retrieval", 64, 64, nil, 0)
	fmt.Println(operator.Capabilities(pr))
	fmt.Println(operator.Require(pr, "solver ddrm", operator.CapSVD))
	blur, _ := operator.New("gaussian_blur", 64, 64, map[string]any{"kernel_size": 9}, 0)
	fmt.Println(operator.Require(blur, "solver ddrm", operator.CapSVD, operator.CapDataProx))
	// Output:
	// [magnitude-projection]
	// solver ddrm needs the operator's svd, which phase_retrieval does not offer (it has: magnitude-projection)
	// <nil>
}
