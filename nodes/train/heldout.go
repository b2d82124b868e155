package train

import (
	"errors"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"gonum.org/v1/gonum/stat"
)

// LossEstimate is an ε-loss averaged over images, with its standard error.
type LossEstimate struct {
	Mean   float64 `json:"mean"`
	StdErr float64 `json:"std_err"` // sample standard deviation of the per-image losses / √N
	N      int     `json:"images"`
}

// ImageLoss is the DDPM ε-loss of a trained model on images, one draw of (t, ε) per image:
// image i gets the stream of (seed, i), so the number does not depend on batch, and two
// models compared with the same seed see the same t and ε on the same images. ctx holds
// the model's weights (it is used read-only, e.g. a loaded prior's context).
//
// This is the held-out loss to compare priors by ("before and after" a retraining); the
// Trainer's own HeldOutLoss is a smaller, batch-sized version of it tracked during a run.
func ImageLoss(backend backends.Backend, model Model, ctx *context.Context, images Images, batch int, seed uint64) (LossEstimate, error) {
	if images.N < 2 || images.size() < 1 || len(images.Pixels) != images.N*images.size() {
		return LossEstimate{}, fmt.Errorf("train: held-out loss: %d pixels for %d images of %d×%d×%d (need at least 2 images)",
			len(images.Pixels), images.N, images.C, images.H, images.W)
	}
	if batch < 1 {
		return LossEstimate{}, fmt.Errorf("train: held-out loss: batch must be at least 1, got %d", batch)
	}
	exec, err := context.NewExec(backend, ctx.Reuse(),
		func(ctx *context.Context, x0, tt, eps, a, s *graph.Node) *graph.Node {
			return perImageLoss(ctx, model, x0, tt, eps, a, s)
		})
	if err != nil {
		return LossEstimate{}, fmt.Errorf("train: held-out loss: %w", err)
	}
	defer exec.Finalize()
	sched, n := schedule.Default(), images.size()
	losses := make([]float64, 0, images.N)
	for start := 0; start < images.N; start += batch {
		B := min(batch, images.N-start)
		ts, a, s, eps := make([]int32, B), make([]float32, B), make([]float32, B), make([]float32, B*n)
		for i := range B {
			drawNoise(sched, newRNG("heldout", seed, uint64(start+i)), ts[i:i+1], a[i:i+1], s[i:i+1], eps[i*n:(i+1)*n])
		}
		out, err := exec.Exec(stepInputs(images.Pixels[start*n:(start+B)*n], ts, eps, a, s, images)...)
		if err != nil {
			return LossEstimate{}, fmt.Errorf("train: held-out loss: %w", err)
		}
		for _, v := range tensors.MustCopyFlatData[float32](out[0]) {
			losses = append(losses, float64(v))
		}
	}
	mean, std := stat.MeanStdDev(losses, nil) // std: the sample standard deviation
	if math.IsNaN(mean) || math.IsInf(mean, 0) {
		return LossEstimate{}, errors.New("train: held-out loss is not finite")
	}
	return LossEstimate{Mean: mean, StdErr: std / math.Sqrt(float64(len(losses))), N: len(losses)}, nil
}
