package main

import (
	"fmt"
	"slices"

	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
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
gaussian_blur, inpainting (the mask from --mask, 1 = observed, [H, W], [1, 1, H, W] or
per channel [1, C, H, W]).`,
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
				if op, err = maskOperator(maskPath, mask.Shape().Dimensions, floats(mask), d); err != nil {
					return usageError{err}
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
	cmd.Flags().IntVar(&t, "t", 0, "diffusion step, 0…999 (required)")
	cmd.Flags().StringVar(&yPath, "y", "", "measurement, float32 .npy (required)")
	cmd.Flags().StringVar(&zPath, "noise", "", "ancestral noise z, shaped like x_t (required)")
	cmd.Flags().StringVar(&maskPath, "mask", "", "inpainting mask .npy (1 = observed): [H, W], [1, 1, H, W] or [1, C, H, W]")
	cmd.Flags().StringVar(&outPath, "out", "", "x_{t−1} output .npy (required)")
	for _, name := range []string{"task-config", "xt", "t", "y", "noise", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// maskOperator builds the inpainting operator of --mask (path, its dims and values) for
// images of shape x = [N, C, H, W]: a mask [H, W] or [1, 1, H, W] is one mask for every
// channel, as is [1, C, H, W] with equal channels; a [1, C, H, W] mask whose channels
// differ masks each channel on its own. Values must be 0 or 1.
func maskOperator(path string, md []int, mask []float64, x []int) (operator.Operator, error) {
	c, h, w := x[1], x[2], x[3]
	switch {
	case slices.Equal(md, []int{h, w}), slices.Equal(md, []int{1, 1, h, w}):
	case slices.Equal(md, []int{1, c, h, w}):
		if !equalChannels(mask, c, h*w) {
			return perChannelMask(path, mask, c, h, w)
		}
		mask = mask[:h*w]
	default:
		return nil, fmt.Errorf("--mask %s: shape %v does not fit --xt of shape %v; want [%d, %d], [1, 1, %d, %d] or [1, %d, %d, %d]",
			path, md, x, h, w, h, w, c, h, w)
	}
	op, err := operator.NewMaskInpainting(mask, h, w)
	if err != nil {
		return nil, fmt.Errorf("--mask %s: %w", path, err)
	}
	return op, nil
}

// equalChannels says whether the c planes of n values each in mask are equal.
func equalChannels(mask []float64, c, n int) bool {
	for ch := 1; ch < c; ch++ {
		if !slices.Equal(mask[:n], mask[ch*n:(ch+1)*n]) {
			return false
		}
	}
	return true
}

// perChannelMask is inpainting with a [1, C, H, W] mask m: A x = m ⊙ x (self-adjoint),
// projection x + m ⊙ (y − x).
func perChannelMask(path string, mask []float64, c, h, w int) (operator.Operator, error) {
	kept := 0
	for i, v := range mask {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("--mask %s: value at [0, %d, %d, %d] is %v, must be 0 or 1", path, i/(h*w), i/w%h, i%w, v)
		}
		kept += int(v)
	}
	mask = slices.Clone(mask)
	node := func(x *graph.Node) *graph.Node {
		if x.DType() == dtypes.Float32 {
			f := make([]float32, len(mask))
			for i, v := range mask {
				f[i] = float32(v)
			}
			return graph.Const(x.Graph(), tensors.FromFlatDataAndDimensions(f, 1, c, h, w))
		}
		return graph.ConvertDType(graph.Const(x.Graph(), tensors.FromFlatDataAndDimensions(slices.Clone(mask), 1, c, h, w)), x.DType())
	}
	apply := func(x *graph.Node) *graph.Node { return graph.Mul(x, node(x)) }
	return operator.FromFunc(operator.Func{
		Name: "inpainting",
		Shape: func(x shapes.Shape) (shapes.Shape, error) {
			if d := x.Dimensions; len(d) != 4 || d[1] != c || d[2] != h || d[3] != w {
				return x, fmt.Errorf("inpainting: the per-channel mask of --mask %s (%d of %d values kept) is [1, %d, %d, %d], images are %v", path, kept, len(mask), c, h, w, d)
			}
			return x, nil
		},
		Apply:   apply,
		Adjoint: apply,
		Project: func(x, y *graph.Node) *graph.Node { return graph.Add(x, graph.Mul(node(x), graph.Sub(y, x))) },
	})
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
