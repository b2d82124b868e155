package main

import (
	"encoding/json"
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/train"
	"github.com/spf13/cobra"
)

// heldOutLoss is what `dpsflow model loss --json` prints.
type heldOutLoss struct {
	train.LossEstimate
	Seed uint64 `json:"seed"`
	Data string `json:"data"`
}

func newModelLossCmd() *cobra.Command {
	var f modelFlags
	var n, batch int
	var seed uint64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "loss",
		Short: "The held-out DDPM ε-loss of a model on the MNIST test split (to compare priors)",
		Long: `loss computes the ε-loss that dpsflow train minimises, mean (ε̂(x_t, t) − ε)², on the first
--n digits of the MNIST test split, which training never sees. Image i gets its own t and ε,
drawn from (--seed, i): two models scored with the same --n and --seed see the same t, ε and
images, so their losses compare directly, and the standard error of the mean says how far
apart they must be to differ. With no --model-config/--checkpoint it scores the shipped MNIST
prior. The whole split (10 000 digits) takes about two minutes on 2 cores.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 {
				return usageError{fmt.Errorf("--batch must be at least 1, got %d", batch)}
			}
			_, test, err := mnist.Load("")
			if err != nil {
				return err
			}
			if n < 2 || n > test.N {
				return usageError{fmt.Errorf("--n must be in [2, %d] (the MNIST test split), got %d", test.N, n)}
			}
			m, ctx, backend, err := f.load()
			if err != nil {
				return err
			}
			defer backend.Finalize()
			if c := m.Config(); c.InChannels != 1 || c.ImageSize != mnist.Size {
				return usageError{fmt.Errorf("the model takes %d×%d×%d images; the MNIST test split is 1×%d×%d",
					c.InChannels, c.ImageSize, c.ImageSize, mnist.Size, mnist.Size)}
			}
			images := train.Images{Pixels: test.Images[:n*mnist.Size*mnist.Size], N: n, C: 1, H: mnist.Size, W: mnist.Size}
			est, err := train.ImageLoss(backend, m, ctx, images, batch, seed)
			if err != nil {
				return err
			}
			res := heldOutLoss{LossEstimate: est, Seed: seed, Data: fmt.Sprintf("the first %d MNIST test digits", n)}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "held-out ε-loss %.5f ± %.5f (standard error) on %s, seed %d\n",
				est.Mean, est.StdErr, res.Data, seed)
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&n, "n", 10000, "test digits to score (the first N)")
	fl.IntVar(&batch, "batch", 100, "images per network call (memory, not the result)")
	fl.Uint64Var(&seed, "seed", 0, "seed of the per-image t and ε (default 0)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
