package xla

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// maxIm2colPieces bounds the number of slices im2col may build (min(kernel taps, output
// positions)); above it the convolution goes to SimpleGo's direct loop. A 61×61 blur on a
// 64×64 image is such a case — and is better done in the Fourier domain anyway.
const maxIm2colPieces = 512

// convParams are ConvGeneral's parameters with GoMLX's nil and zero defaults resolved.
type convParams struct {
	axes                                     backends.ConvolveAxesConfig
	strides, inputDilations, kernelDilations []int
	paddings                                 [][2]int
	channelGroups, batchGroups               int
}

func normaliseConv(spatial int, axes backends.ConvolveAxesConfig, strides []int, paddings [][2]int,
	inputDilations, kernelDilations []int, channelGroups, batchGroups int) convParams {
	ones := func(v []int) []int {
		out := make([]int, spatial)
		for i := range out {
			out[i] = 1
			if i < len(v) && v[i] > 0 {
				out[i] = v[i]
			}
		}
		return out
	}
	p := convParams{
		axes:            axes.Clone(),
		strides:         ones(strides),
		inputDilations:  ones(inputDilations),
		kernelDilations: ones(kernelDilations),
		paddings:        make([][2]int, spatial),
		channelGroups:   max(channelGroups, 1),
		batchGroups:     max(batchGroups, 1),
	}
	copy(p.paddings, paddings)
	return p
}

// ConvGeneral normalises the parameters and, for float32 without batch groups, emits
// SimpleGo's convolution node, which fastConv (convexec.go) runs as an implicit GEMM; a
// kernel that is a Reverse along spatial axes (autodiff's input gradient) is replaced by
// its operand and read backwards. Other dtypes are composed as im2col + one matrix product: move to
// [C, B, spatial...], pad (interior padding = input dilation), cut min(taps, outputs)
// strided slices into a [C·taps, B·O] patch matrix, multiply the kernel reshaped to
// [Cout, C·taps] by it. Parameters are normalised first, which also avoids the two
// SimpleGo bugs (nil strides read as 0; strided-conv gradients with nil kernel dilation).
func (b *embeddedBuilder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	channelGroupCount, batchGroupCount int) (backends.Op, error) {
	e := &emitter{b: b.Builder}
	inShape, kShape := e.shape(input), e.shape(kernel)
	if e.err != nil {
		return nil, e.err
	}
	S := inShape.Rank() - 2
	if S < 0 || len(axes.InputSpatial) != S {
		return nil, fmt.Errorf("ConvGeneral: input %s does not match the axes config (%d spatial axes)", inShape, len(axes.InputSpatial))
	}
	p := normaliseConv(S, axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount)
	outShape, err := shapeinference.ConvGeneralOp(inShape, kShape, p.axes, p.strides, p.paddings,
		p.inputDilations, p.kernelDilations, p.channelGroups, p.batchGroups)
	if err != nil {
		return nil, fmt.Errorf("ConvGeneral(input %s, kernel %s): %w", inShape, kShape, err)
	}

	B := inShape.Dimensions[axes.InputBatch]
	C := inShape.Dimensions[axes.InputChannels]
	Cout := kShape.Dimensions[axes.KernelOutputChannels]
	K := make([]int, S)
	O := make([]int, S)
	T, nO := 1, 1
	for i := 0; i < S; i++ {
		K[i] = kShape.Dimensions[axes.KernelSpatial[i]]
		O[i] = outShape.Dimensions[axes.OutputSpatial[i]]
		T *= K[i]
		nO *= O[i]
	}
	if inShape.DType == dtypes.Float32 && kShape.DType == dtypes.Float32 && p.batchGroups == 1 && S > 0 {
		// One node, run as an implicit GEMM by fastConv (convexec.go): no im2col. A kernel
		// reversed along spatial axes is read backwards by the executor instead.
		flips, unreversed := b.kernelFlips(kernel, p.axes)
		if flips != nil {
			kernel = unreversed
		}
		node, err := b.Builder.ConvGeneral(input, kernel, p.axes, p.strides, p.paddings,
			p.inputDilations, p.kernelDilations, p.channelGroups, p.batchGroups)
		if err == nil && flips != nil {
			setKernelFlips(node.(*simplego.Node), flips)
		}
		return node, err
	}
	if p.batchGroups > 1 || min(T, nO) > maxIm2colPieces || nO == 0 {
		// GoMLX's autodiff never emits batch grouping; huge kernels on huge images are
		// rare and would make too many slices: SimpleGo's direct loop, with sane params.
		return b.Builder.ConvGeneral(input, kernel, p.axes, p.strides, p.paddings,
			p.inputDilations, p.kernelDilations, p.channelGroups, p.batchGroups)
	}

	// Work layout [C, B, spatial...]: the patch matrix is then [C·T, B·O] and the product
	// kernel [Cout, C·T] × patches gives [Cout, B·O], whose long rows suit the GEMM; for
	// NCHW with batch 1 no transpose moves data.
	x := e.transpose(input, append([]int{axes.InputChannels, axes.InputBatch}, axes.InputSpatial...)...)

	// Padding and input dilation.
	padCfg := make([]backends.PadAxis, S+2)
	needPad := false
	for i := 0; i < S; i++ {
		padCfg[i+2] = backends.PadAxis{Start: p.paddings[i][0], End: p.paddings[i][1], Interior: p.inputDilations[i] - 1}
		needPad = needPad || padCfg[i+2] != (backends.PadAxis{})
	}
	if needPad {
		zero := e.do(func() (backends.Op, error) { return b.Builder.Constant(zeroOf(inShape.DType)) })
		x = e.do(func() (backends.Op, error) { return b.Pad(x, zero, padCfg...) })
	}

	// Patch matrix [C·T, B·O], channel-major then tap.
	var patches backends.Op
	switch {
	case T == 1 && allOnes(p.strides) && slices.Equal(e.shape(x).Dimensions[2:], O):
		patches = e.reshape(x, C, B*nO)
	case T <= nO:
		// One strided slice per kernel tap: each is [C, B, O...].
		pieces := make([]backends.Op, 0, T)
		for tap := range T {
			k := unflatten(tap, K)
			starts := make([]int, S+2)
			limits := append([]int{C, B}, make([]int, S)...)
			steps := append([]int{1, 1}, p.strides...)
			for i := 0; i < S; i++ {
				starts[i+2] = k[i] * p.kernelDilations[i]
				limits[i+2] = starts[i+2] + (O[i]-1)*p.strides[i] + 1
			}
			pieces = append(pieces, e.reshape(e.slice(x, starts, limits, steps), C, 1, B*nO))
		}
		patches = e.reshape(e.concat(1, pieces...), C*T, B*nO)
	default:
		// Fewer outputs than taps (the kernel gradient): one window slice per output
		// position, each [C, B, K...] → [C, B, T, 1]; then B moves behind T.
		pieces := make([]backends.Op, 0, nO)
		for pos := range nO {
			o := unflatten(pos, O)
			starts := make([]int, S+2)
			limits := append([]int{C, B}, make([]int, S)...)
			steps := append([]int{1, 1}, p.kernelDilations...)
			for i := 0; i < S; i++ {
				starts[i+2] = o[i] * p.strides[i]
				limits[i+2] = starts[i+2] + (K[i]-1)*p.kernelDilations[i] + 1
			}
			pieces = append(pieces, e.reshape(e.slice(x, starts, limits, steps), C, B, T, 1))
		}
		patches = e.reshape(e.transpose(e.concat(3, pieces...), 0, 2, 1, 3), C*T, B*nO)
	}

	// Kernel as [Cout, Cin/groups·T]; with groups, [g, Cout/g, Cin/g·T] against
	// patches [g, Cin/g·T, B·O].
	kperm := append([]int{axes.KernelOutputChannels, axes.KernelInputChannels}, axes.KernelSpatial...)
	w := e.transpose(kernel, kperm...)
	g := p.channelGroups
	Cg := C / g
	lhs := e.reshape(w, g, Cout/g, Cg*T)
	rhs := e.reshape(patches, g, Cg*T, B*nO)
	out := e.do(func() (backends.Op, error) {
		return b.Builder.DotGeneral(lhs, []int{2}, []int{0}, rhs, []int{1}, []int{0})
	})

	// [g, Cout/g, B·O] → [Cout, B, O...] → the requested output layout.
	out = e.reshape(out, append([]int{Cout, B}, O...)...)
	operm := make([]int, S+2)
	operm[axes.OutputChannels] = 0
	operm[axes.OutputBatch] = 1
	for i, a := range axes.OutputSpatial {
		operm[a] = i + 2
	}
	out = e.transpose(out, operm...)
	if e.err != nil {
		return nil, fmt.Errorf("ConvGeneral(input %s, kernel %s): %w", inShape, kShape, e.err)
	}
	return out, nil
}

// kernelFlips says, per spatial axis, whether kernel is a Reverse of another node along
// it, and returns that node; nil if kernel is not such a reversal (or also reverses a
// channel axis).
func (b *embeddedBuilder) kernelFlips(kernel backends.Op, axes backends.ConvolveAxesConfig) ([]bool, backends.Op) {
	r, ok := b.reversals[kernel]
	if !ok {
		return nil, nil
	}
	flips := make([]bool, len(axes.KernelSpatial))
	for _, a := range r.axes {
		i := slices.Index(axes.KernelSpatial, a)
		if i < 0 {
			return nil, nil
		}
		flips[i] = !flips[i]
	}
	return flips, r.x
}

// zeroOf returns a one-element slice holding dtype's zero, as Constant wants.
func zeroOf(dtype dtypes.DType) any {
	return reflect.MakeSlice(reflect.SliceOf(dtype.GoType()), 1, 1).Interface()
}

// unflatten turns a row-major flat index into a multi-index over dims.
func unflatten(flat int, dims []int) []int {
	idx := make([]int, len(dims))
	for i := len(dims) - 1; i >= 0; i-- {
		idx[i] = flat % dims[i]
		flat /= dims[i]
	}
	return idx
}

func allOnes(v []int) bool { return !slices.ContainsFunc(v, func(x int) bool { return x != 1 }) }
