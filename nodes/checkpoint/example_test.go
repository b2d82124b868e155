package checkpoint_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Save weights as safetensors, read them back (Read tells the format from the content, so
// a PyTorch .pt file works the same way), then check them against what a model expects.
func Example() {
	dir, err := os.MkdirTemp("", "checkpoint-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	weights := map[string]*tensors.Tensor{
		"dense.weight": tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"dense.bias":   tensors.FromFlatDataAndDimensions([]float32{0.5, -0.5}, 2),
	}
	if err := checkpoint.WriteSafetensors(path, weights, map[string]string{"format": "pt"}); err != nil {
		panic(err)
	}

	got, err := checkpoint.Read(path)
	if err != nil {
		panic(err)
	}
	fmt.Println("dense.weight:", got["dense.weight"].Shape(), tensors.MustCopyFlatData[float32](got["dense.weight"]))

	// The model has a bigger output layer and a norm layer the checkpoint lacks.
	err = checkpoint.CheckAgainst(got, map[string]shapes.Shape{
		"dense.weight": shapes.Make(dtypes.Float32, 4, 3),
		"dense.bias":   shapes.Make(dtypes.Float32, 2),
		"norm.scale":   shapes.Make(dtypes.Float32, 4),
	})
	fmt.Println(err)
	// Output:
	// dense.weight: (Float32)[2 3] [1 2 3 4 5 6]
	// checkpoint does not match the model: 1 missing, 0 extra, 1 mis-shaped tensors
	//   missing:    norm.scale (want (Float32)[4])
	//   mis-shaped: dense.weight: got (Float32)[2 3], want (Float32)[4 3]
}
