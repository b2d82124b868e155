package metrics_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/metrics"
)

func Example() {
	// A 1×12×12 ramp over [-1, 1] and an estimate with 10% less contrast.
	const c, h, w = 1, 12, 12
	truth, est := make([]float32, c*h*w), make([]float32, c*h*w)
	for i := range truth {
		truth[i] = -1 + 2*float32(i)/float32(len(truth)-1)
		est[i] = 0.9 * truth[i]
	}
	ssim, err := metrics.SSIM(est, truth, c, h, w, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	mean, std := metrics.MeanStd([]float64{30, 32, 34})
	fmt.Printf("PSNR %.2f dB\n", metrics.PSNR(est, truth, 2))
	fmt.Printf("SSIM %.4f\n", ssim)
	fmt.Printf("residual %.2f\n", metrics.Residual(truth, est)) // as ‖y − A(x)‖ with A = identity
	fmt.Printf("%.1f ± %.2f\n", mean, std)
	// Output:
	// PSNR 30.73 dB
	// SSIM 0.9893
	// residual 0.70
	// 32.0 ± 1.63
}
