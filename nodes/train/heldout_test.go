package train

import (
	"math"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func TestImageLossMatchesHostFormula(t *testing.T) {
	images := smooth(11, 3)
	ctx := context.New()
	scalar{}.Init(ctx, 0) // ε̂ = 0.5·x_t
	const seed = 5
	// The host's loss: each image's own (t, ε) stream, ε̂ = 0.5·x_t, mean squared error.
	n := images.size()
	var losses []float64
	for i := range images.N {
		ts, a, s, eps := make([]int32, 1), make([]float32, 1), make([]float32, 1), make([]float32, n)
		drawNoise(schedule.Default(), newRNG("heldout", seed, uint64(i)), ts, a, s, eps)
		sum := 0.0
		for j, x0 := range images.Pixels[i*n : (i+1)*n] {
			xt := float64(a[0])*float64(x0) + float64(s[0])*float64(eps[j])
			d := 0.5*xt - float64(eps[j])
			sum += d * d
		}
		losses = append(losses, sum/float64(n))
	}
	mean, sq := 0.0, 0.0
	for _, l := range losses {
		mean += l / float64(len(losses))
	}
	for _, l := range losses {
		sq += (l - mean) * (l - mean)
	}
	stdErr := math.Sqrt(sq/float64(len(losses)-1)) / math.Sqrt(float64(len(losses)))

	for _, batch := range []int{1, 4, 11, 32} { // the batch must not change the number
		got, err := ImageLoss(backend(t), scalar{}, ctx, images, batch, seed)
		if err != nil {
			t.Fatal(err)
		}
		if got.N != images.N || math.Abs(got.Mean-mean) > 1e-6*mean || math.Abs(got.StdErr-stdErr) > 1e-5*stdErr {
			t.Errorf("batch %d: %+v, host formula mean %g ± %g", batch, got, mean, stdErr)
		}
	}
	// Another seed draws other t and ε.
	if other, err := ImageLoss(backend(t), scalar{}, ctx, images, 4, seed+1); err != nil || other.Mean == mean {
		t.Errorf("seed %d: %+v, %v", seed+1, other, err)
	}
	if _, err := ImageLoss(backend(t), scalar{}, ctx, smooth(1, 1), 4, seed); err == nil {
		t.Error("one image: no error")
	}
}
