package pipeline_test

import (
	"context"
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/task"
)

// Execute runs a whole DPS job from Go: here box inpainting of two MNIST test digits with
// the shipped prior, against the unconditional sampler on the same measurement.
func ExampleExecute() {
	tk, err := task.Preset("inpaint-box")
	if err != nil {
		panic(err)
	}
	o, err := pipeline.Execute(context.Background(), pipeline.RunSpec{
		Name: "inpaint-box", Task: tk, Builtin: pipeline.BuiltinMNIST,
		N: 2, Steps: 20, Batch: 2, Backend: "embedded", Baseline: "vanilla",
	}, "", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("images:", o.Recon.N, "of", o.Recon.C, "×", o.Recon.H, "×", o.Recon.W)
	fmt.Println("DPS beats vanilla:", o.Metrics.Summary["psnr"].Mean > o.BaselineMetrics.Summary["psnr"].Mean)
	// Output:
	// images: 2 of 1 × 32 × 32
	// DPS beats vanilla: true
}
