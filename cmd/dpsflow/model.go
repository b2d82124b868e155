package main

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"
)

// backendFlagUsage is the one wording of --backend: an empty flag falls back to
// $DPSFLOW_BACKEND, then to the embedded backend (xla.New does this).
const backendFlagUsage = `backend: "embedded", "xla:<plugin>" or "xla:/path/plugin.so" (default: $DPSFLOW_BACKEND if set, else "embedded")`

// modelFlags are the flags that name a network and its weights.
type modelFlags struct {
	config, checkpoint, backend string
}

func (f *modelFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "model-config", "", "reference-format model_config.yaml; give it with --checkpoint (default: the shipped MNIST prior)")
	cmd.Flags().StringVar(&f.checkpoint, "checkpoint", "", "weights: PyTorch .pt or .safetensors; give it with --model-config (default: the shipped MNIST prior)")
	cmd.Flags().StringVar(&f.backend, "backend", "", backendFlagUsage)
}

// load builds the model, reads and checks the checkpoint, and makes the backend. With
// neither --model-config nor --checkpoint it is the shipped MNIST prior, as in `run`.
func (f *modelFlags) load() (*adm.Model, *context.Context, backends.Backend, error) {
	switch {
	case f.config == "" && f.checkpoint == "":
		prior, err := pipeline.NewPriorSpec(pipeline.BuiltinMNIST, "", "")
		if err != nil {
			return nil, nil, nil, err
		}
		m, ctx, err := prior.Load()
		if err != nil {
			return nil, nil, nil, err
		}
		backend, err := xla.New(f.backend)
		if err != nil {
			return nil, nil, nil, err
		}
		return m, ctx, backend, nil
	case f.config == "":
		return nil, nil, nil, usageError{fmt.Errorf("--checkpoint %s needs --model-config too (or give neither for the shipped MNIST prior)", f.checkpoint)}
	case f.checkpoint == "":
		return nil, nil, nil, usageError{fmt.Errorf("--model-config %s needs --checkpoint too (or give neither for the shipped MNIST prior)", f.config)}
	}
	cfg, err := adm.LoadConfig(f.config)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	m, err := adm.New(cfg)
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("model config %s: %w", f.config, err)}
	}
	weights, err := checkpoint.Read(f.checkpoint)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	ctx := context.New()
	if err := m.Load(ctx, weights); err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("checkpoint %s: %w", f.checkpoint, err)}
	}
	backend, err := xla.New(f.backend)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, ctx, backend, nil
}

// readNPY reads an array flag, naming the flag in errors.
func readNPY(flag, path string) (*tensors.Tensor, error) {
	t, err := npy.Read(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	return t, nil
}

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Run a diffusion network on arrays (for cross-checks with other implementations)"}
	var f modelFlags
	var xPath, tPath, outPath string
	eval := &cobra.Command{
		Use:   "eval",
		Short: "Run the network on a batch: x (NCHW float32 .npy) at steps t (.npy of length N) → out.npy",
		Long: `eval runs the ADM UNet of --model-config with the weights of --checkpoint on x [N, C, H, W]
at integer diffusion steps t [N] and writes the raw network output [N, C or 2C, H, W] (ε, then
v for learn_sigma models) as float32 .npy, like calling the PyTorch model.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, ctx, backend, err := f.load()
			if err != nil {
				return err
			}
			x, err := readNPY("x", xPath)
			if err != nil {
				return err
			}
			t, err := readNPY("t", tPath)
			if err != nil {
				return err
			}
			c := m.Config()
			if d := x.Shape().Dimensions; len(d) != 4 || d[1] != c.InChannels || d[2] != c.ImageSize || d[3] != c.ImageSize {
				return usageError{fmt.Errorf("--x %s: shape %v, the model wants [N, %d, %d, %d]", xPath, d, c.InChannels, c.ImageSize, c.ImageSize)}
			}
			if d := t.Shape().Dimensions; len(d) != 1 || d[0] != x.Shape().Dimensions[0] {
				return usageError{fmt.Errorf("--t %s: shape %v, want [%d] (one step per image)", tPath, d, x.Shape().Dimensions[0])}
			}
			exec, err := context.NewExec(backend, ctx, func(_ *context.Context, x, t *Node) *Node {
				eps, v := m.Forward(ctx, ConvertDType(x, dtypes.Float32), ConvertDType(t, dtypes.Int32))
				if v != nil {
					return Concatenate([]*Node{eps, v}, 1)
				}
				return eps
			})
			if err != nil {
				return err
			}
			out, err := exec.Exec1(x, t)
			if err != nil {
				return err
			}
			if err := npy.Write(outPath, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s %v\n", outPath, out.Shape().Dimensions)
			return nil
		},
	}
	f.register(eval)
	eval.Flags().StringVar(&xPath, "x", "", "input images, NCHW .npy (required)")
	eval.Flags().StringVar(&tPath, "t", "", "diffusion steps, .npy of length N, float or int (required)")
	eval.Flags().StringVar(&outPath, "out", "", "output .npy (required)")
	for _, name := range []string{"x", "t", "out"} {
		_ = eval.MarkFlagRequired(name)
	}
	cmd.AddCommand(eval, newModelSampleCmd(), newModelQualityCmd(), newModelLossCmd())
	return cmd
}
