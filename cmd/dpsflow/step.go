package main

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/spf13/cobra"
)

func newStepCmd() *cobra.Command {
	var f modelFlags
	var taskPath, xtPath, yPath, zPath, maskPath, outPath string
	var t int
	cmd := &cobra.Command{
		Use:   "step",
		Short: "One DPS update exactly as the reference does it, from given x_t, y and noise",
		Long: `step runs one reference DPS update at diffusion step --t (of the 1000-step schedule):
ε̂, v = model(x_t, t); x̂0 = clip((x_t − √(1−ᾱ) ε̂)/√ᾱ, −1, 1); x' = mean + exp(½ log σ²)·z with the
learned-range variance (no noise at t = 0); x_{t−1} = x' − scale·∇_{x_t}‖y − A(x̂0)‖, the norm
taken over the whole batch as the reference does, with the operator and
conditioning.params.scale of the reference task YAML. Operators: super_resolution,
gaussian_blur, inpainting (the mask from --mask, 1 = observed, [H, W] or [1, 1, H, W]).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tc, err := task.Load(taskPath)
			if err != nil {
				return usageError{err}
			}
			m, ctx, backend, err := f.load()
			if err != nil {
				return err
			}
			xt, err := readNPY("xt", xtPath)
			if err != nil {
				return err
			}
			y, err := readNPY("y", yPath)
			if err != nil {
				return err
			}
			z, err := readNPY("noise", zPath)
			if err != nil {
				return err
			}
			for flag, a := range map[string]*tensors.Tensor{"xt": xt, "y": y, "noise": z} {
				if a.DType() != dtypes.Float32 {
					return usageError{fmt.Errorf("--%s: dtype %s, float32 expected", flag, a.DType())}
				}
			}
			d := xt.Shape().Dimensions
			if len(d) != 4 {
				return usageError{fmt.Errorf("--xt %s: shape %v, want [N, C, H, W]", xtPath, d)}
			}
			var op operator.Operator
			if tc.OperatorName() == "inpainting" {
				if maskPath == "" {
					return usageError{fmt.Errorf("task %s is inpainting: --mask is required", taskPath)}
				}
				mask, err := readNPY("mask", maskPath)
				if err != nil {
					return err
				}
				md := mask.Shape().Dimensions
				if mask.Shape().Size() != d[2]*d[3] {
					return usageError{fmt.Errorf("--mask %s: shape %v, want [%d, %d] or [1, 1, %d, %d]", maskPath, md, d[2], d[3], d[2], d[3])}
				}
				if op, err = operator.NewMaskInpainting(floats(mask), d[2], d[3]); err != nil {
					return usageError{fmt.Errorf("--mask %s: %w", maskPath, err)}
				}
			} else if op, err = tc.Operator(d[2], d[3], 0); err != nil {
				return usageError{err}
			}
			nm, err := tc.Noise()
			if err != nil {
				return usageError{err}
			}
			g := tc.Guidance()
			g.BatchNorm = true // the reference's norm over the whole batch
			s, err := sampler.New(backend, m.Prior(ctx), schedule.Default(), op, nm, sampler.Config{Guidance: g})
			if err != nil {
				return usageError{fmt.Errorf("task %s: %w", taskPath, err)}
			}
			next, err := s.Step(xt, t, y, z, 0)
			if err != nil {
				return usageError{err}
			}
			if err := npy.Write(outPath, next); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s %v\n", outPath, next.Shape().Dimensions)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&taskPath, "task-config", "", "reference-format task YAML (required)")
	cmd.Flags().StringVar(&xtPath, "xt", "", "x_t, NCHW float32 .npy (required)")
	cmd.Flags().IntVar(&t, "t", -1, "diffusion step, 0…999 (required)")
	cmd.Flags().StringVar(&yPath, "y", "", "measurement, float32 .npy (required)")
	cmd.Flags().StringVar(&zPath, "noise", "", "ancestral noise z, shaped like x_t (required)")
	cmd.Flags().StringVar(&maskPath, "mask", "", "inpainting mask .npy (1 = observed)")
	cmd.Flags().StringVar(&outPath, "out", "", "x_{t−1} output .npy (required)")
	for _, name := range []string{"task-config", "xt", "t", "y", "noise", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// floats returns a tensor's values as float64.
func floats(t *tensors.Tensor) []float64 {
	var out []float64
	t.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float32:
			for _, x := range v {
				out = append(out, float64(x))
			}
		case []float64:
			out = append(out, v...)
		case []int32:
			for _, x := range v {
				out = append(out, float64(x))
			}
		case []int64:
			for _, x := range v {
				out = append(out, float64(x))
			}
		}
	})
	return out
}
