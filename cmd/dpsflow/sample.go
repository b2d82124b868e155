package main

import (
	"context"
	"fmt"

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
	var out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Draw unconditional samples from a model and save them as a PNG grid",
		Long: `sample draws --n unconditional samples with --steps DDPM steps and writes them as one PNG grid.
With no --model-config/--checkpoint it uses the shipped MNIST prior. A bar (or, when stderr
is not a terminal, a line every 10 %) shows the steps done.`,
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
	return cmd
}
