package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/plot"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/spf13/cobra"
)

func newModelSampleCmd() *cobra.Command {
	var f modelFlags
	var n, steps, scale int
	var seed uint64
	var out, imagesDir string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Draw unconditional samples from a model and save them as a PNG grid",
		Long: `sample draws --n unconditional samples with --steps DDPM steps and writes them as one PNG grid;
with --images DIR also each sample as its own PNG, DIR/00000.png, DIR/00001.png, … (what
dpsflow score and the distribution metrics read). DIR must be new or empty: nothing is
overwritten. With no --model-config/--checkpoint it uses the shipped MNIST prior. A bar (or,
when stderr is not a terminal, a line every 10 %) shows the steps done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return usageError{fmt.Errorf("--n must be at least 1, got %d", n)}
			}
			if steps < 1 || steps > 1000 {
				return usageError{fmt.Errorf("--steps must be in [1, 1000] (the schedule has 1000), got %d", steps)}
			}
			if scale < 1 {
				return usageError{fmt.Errorf("--scale must be at least 1, got %d", scale)}
			}
			if imagesDir != "" {
				if err := checkEmptyDir(imagesDir); err != nil {
					return usageError{fmt.Errorf("--images %w", err)}
				}
			}
			m, ctx, backend, err := f.load()
			if err != nil {
				return err
			}
			nm, _ := noise.NewGaussian(1) // unused by vanilla sampling
			s, err := sampler.New(backend, m.Prior(ctx), schedule.Default(), operator.NewIdentity(), nm,
				sampler.Config{Steps: steps, Guidance: guidance.Config{Method: guidance.Vanilla}})
			if err != nil {
				return err
			}
			c := m.Config()
			xShape := shapes.Make(dtypes.Float32, n, c.InChannels, c.ImageSize, c.ImageSize)
			var onStep sampler.Progress
			if !quiet {
				p := newProgress(cmd.ErrOrStderr())
				defer p.finish()
				onStep = func(done, total int, _ []float64) {
					p.event(dag.Event{Type: "progress", Node: "sample", Done: done, Total: total})
				}
			}
			res, err := s.Run(context.Background(), tensors.FromShape(xShape), xShape, seed, onStep)
			if err != nil {
				return err
			}
			img, err := plot.Grid(res.X, 0)
			if err != nil {
				return err
			}
			if err := plot.SavePNG(out, plot.Upscale(img, scale)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d samples, %d steps)\n", out, n, steps)
			if imagesDir != "" {
				if err := saveSamples(imagesDir, res.X); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/00000.png … %05d.png\n", imagesDir, n-1)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&n, "n", 16, "number of samples")
	cmd.Flags().IntVar(&steps, "steps", 250, "sampling steps (respaced from 1000)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "random seed (default 0)")
	cmd.Flags().StringVar(&out, "out", "samples.png", "output PNG grid")
	cmd.Flags().IntVar(&scale, "scale", 1, "enlarge the grid this many times (nearest neighbour)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	cmd.Flags().StringVar(&imagesDir, "images", "", "also write each sample as DIR/NNNNN.png (DIR new or empty)")
	return cmd
}

// checkEmptyDir accepts a folder that does not exist or is empty (so nothing is
// overwritten); the error starts with the path.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%s: not empty (%d entries, e.g. %s): choose a new folder", dir, len(entries), entries[0].Name())
	}
	return nil
}

// saveSamples writes each image of the batch x [N, C, H, W] (values in [−1, 1]) as
// dir/NNNNN.png.
func saveSamples(dir string, x *tensors.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d := x.Shape().Dimensions
	pixels := tensors.MustCopyFlatData[float32](x)
	size := d[1] * d[2] * d[3]
	for i := range d[0] {
		img := plot.ImageOf(pixels[i*size:(i+1)*size], d[1], d[2], d[3])
		if img == nil {
			return fmt.Errorf("--images: a sample of shape %v is not a gray or RGB image", d[1:])
		}
		if err := plot.SavePNG(filepath.Join(dir, fmt.Sprintf("%05d.png", i)), img); err != nil {
			return err
		}
	}
	return nil
}
