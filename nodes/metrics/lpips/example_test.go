package lpips_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/metrics/lpips"
	"github.com/dpsflow/dpsflow/xla"
)

// Example scores two grey 32×32 images with LPIPS-alex. It needs the user's weight files
// (torchvision's AlexNet and the lpips package's linear layers), so it is compiled but not
// run by go test.
func Example() {
	m, err := lpips.Load("alex", "alexnet-owt-7be5be79.pth", "lpips/weights/v0.1/alex.pth")
	if err != nil {
		fmt.Println(err)
		return
	}
	backend, release, err := xla.Shared("") // $DPSFLOW_BACKEND, else the embedded one
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()

	// Pixels in [0, 255] (e.g. from PNGs) map to [-1, 1] as x/127.5 − 1.
	const n, c, h, w = 1, 1, 32, 32
	pred, ref := make([]float32, n*c*h*w), make([]float32, n*c*h*w)
	for i := range pred {
		pixel := float32(i % 256)
		ref[i] = pixel/127.5 - 1
		pred[i] = 0.9 * ref[i]
	}
	d, err := m.Distances(backend, pred, ref, n, c, h, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("LPIPS-%s = %.4f\n", m.Net(), d[0])
}
