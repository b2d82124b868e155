package plot

import (
	"fmt"
	"image"
)

// Frame is one snapshot of a reverse-diffusion run: the step number, the noisy iterate
// x_t and the Tweedie estimate x̂0 of the clean image at that step.
type Frame struct {
	Step   int
	Xt, X0 image.Image
}

// Snapshots draws the evolution of a sampler: one column per frame titled "step N",
// x_t on the top row and x̂0 below it (rows labelled "x_t" and "E[x0|x_t]", since x̂0 is
// Tweedie's posterior mean; the plain font cannot set the hat), each image enlarged
// scale times (nearest neighbour). It is a gonum/plot figure like ComparisonGrid. Frames
// must be non-empty and hold no nil image.
func Snapshots(frames []Frame, scale int) (image.Image, error) {
	if len(frames) == 0 {
		return nil, fmt.Errorf("plot: snapshots: no frames")
	}
	titles := make([]string, len(frames))
	cells := [][]image.Image{make([]image.Image, len(frames)), make([]image.Image, len(frames))}
	for j, f := range frames {
		if f.Xt == nil || f.X0 == nil {
			return nil, fmt.Errorf("plot: snapshots: frame %d (step %d) has a nil image", j, f.Step)
		}
		titles[j] = fmt.Sprintf("step %d", f.Step)
		cells[0][j], cells[1][j] = f.Xt, f.X0
	}
	return figTable(cells, titles, []string{"x_t", "E[x0|x_t]"}, scale), nil
}
