package xla

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// maxIm2colPieces bounds the number of slices im2col may build (min(kernel taps, output
// positions)); above it the convolution goes to SimpleGo's direct loop. A 61×61 blur on a
// 64×64 image is such a case — and is better done in the Fourier domain anyway.
const maxIm2colPieces = 512

// convParams are ConvGeneral's parameters with GoMLX's nil and zero defaults resolved.
type convParams struct {
	axes                                 backends.ConvolveAxesConfig
	strides, inputDilations, kernelDilat []int
	paddings                             [][2]int
	channelGroups, batchGroups           int
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
		axes:           axes.Clone(),
		strides:        ones(strides),
		inputDilations: ones(inputDilations),
		kernelDilat:    ones(kernelDilations),
		paddings:       make([][2]int, spatial),
		channelGroups:  max(channelGroups, 1),
		batchGroups:    max(batchGroups, 1),
	}
	copy(p.paddings, paddings)
	return p
}

// ConvGeneral replaces SimpleGo's convolution with im2col + one matrix product:
// transpose to channels-last, pad (interior padding = input dilation), cut min(taps,
// outputs) strided slices into a [B·O, taps·C] patch matrix, multiply by the kernel
// reshaped to [taps·C, Cout]. Parameters are normalised first, which also avoids the two
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
		p.inputDilations, p.kernelDilat, p.channelGroups, p.batchGroups)
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
	if p.batchGroups > 1 || min(T, nO) > maxIm2colPieces || nO == 0 {
		// GoMLX's autodiff never emits batch grouping; huge kernels on huge images are
		// rare and would make too many slices: SimpleGo's direct loop, with sane params.
		return b.Builder.ConvGeneral(input, kernel, p.axes, p.strides, p.paddings,
			p.inputDilations, p.kernelDilat, p.channelGroups, p.batchGroups)
	}

	// Channels-last input: [B, spatial..., C].
	perm := append(append([]int{axes.InputBatch}, axes.InputSpatial...), axes.InputChannels)
	x := e.transpose(input, perm...)

	// Padding and input dilation.
	padCfg := make([]backends.PadAxis, S+2)
	needPad := false
	for i := 0; i < S; i++ {
		padCfg[i+1] = backends.PadAxis{Start: p.paddings[i][0], End: p.paddings[i][1], Interior: p.inputDilations[i] - 1}
		needPad = needPad || padCfg[i+1] != (backends.PadAxis{})
	}
	if needPad {
		zero := e.do(func() (backends.Op, error) { return b.Builder.Constant(zeroOf(inShape.DType)) })
		x = e.do(func() (backends.Op, error) { return b.Pad(x, zero, padCfg...) })
	}

	// Patch matrix [B·O, T·C], tap-major then channel.
	var patches backends.Op
	switch {
	case T == 1 && allOnes(p.strides) && sameDims(e.shape(x).Dimensions[1:S+1], O):
		patches = e.reshape(x, B*nO, C)
	case T <= nO:
		// One strided slice per kernel tap: each is [B, O..., C].
		pieces := make([]backends.Op, 0, T)
		for tap := range T {
			k := unflatten(tap, K)
			starts := make([]int, S+2)
			limits := append([]int{B}, make([]int, S+1)...)
			steps := append([]int{1}, append(append([]int{}, p.strides...), 1)...)
			limits[S+1] = C
			for i := 0; i < S; i++ {
				starts[i+1] = k[i] * p.kernelDilat[i]
				limits[i+1] = starts[i+1] + (O[i]-1)*p.strides[i] + 1
			}
			pieces = append(pieces, e.slice(x, starts, limits, steps))
		}
		patches = e.reshape(e.concat(S+1, pieces...), B*nO, T*C)
	default:
		// Fewer outputs than taps (the kernel gradient): one window slice per output
		// position, each [B, K..., C] → [B, 1, T·C].
		pieces := make([]backends.Op, 0, nO)
		for pos := range nO {
			o := unflatten(pos, O)
			starts := make([]int, S+2)
			limits := append([]int{B}, make([]int, S+1)...)
			steps := append([]int{1}, append(append([]int{}, p.kernelDilat...), 1)...)
			limits[S+1] = C
			for i := 0; i < S; i++ {
				starts[i+1] = o[i] * p.strides[i]
				limits[i+1] = starts[i+1] + (K[i]-1)*p.kernelDilat[i] + 1
			}
			pieces = append(pieces, e.reshape(e.slice(x, starts, limits, steps), B, 1, T*C))
		}
		patches = e.reshape(e.concat(1, pieces...), B*nO, T*C)
	}

	// Kernel as [T, Cin/groups, Cout].
	kperm := append(append([]int{}, axes.KernelSpatial...), axes.KernelInputChannels, axes.KernelOutputChannels)
	w := e.transpose(kernel, kperm...)
	g := p.channelGroups
	Cg := C / g
	var out backends.Op
	if g == 1 {
		out = b.matmul(e, patches, e.reshape(w, T*C, Cout), B*nO, T*C, Cout)
	} else {
		lhs := e.reshape(patches, B*nO, T, g, Cg)
		rhs := e.reshape(w, T, Cg, g, Cout/g)
		out = e.do(func() (backends.Op, error) {
			return b.Builder.DotGeneral(lhs, []int{1, 3}, []int{2}, rhs, []int{0, 1}, []int{2})
		}) // [g, B·O, Cout/g]
		out = e.reshape(e.transpose(out, 1, 0, 2), B*nO, Cout)
	}

	// Back to the requested output layout.
	out = e.reshape(out, append(append([]int{B}, O...), Cout)...)
	operm := make([]int, S+2)
	operm[axes.OutputBatch] = 0
	operm[axes.OutputChannels] = S + 1
	for i, a := range axes.OutputSpatial {
		operm[a] = i + 1
	}
	out = e.transpose(out, operm...)
	if e.err != nil {
		return nil, fmt.Errorf("ConvGeneral(input %s, kernel %s): %w", inShape, kShape, e.err)
	}
	return out, nil
}

// smallDotCrosses is SimpleGo's threshold (16 blocks of 64×64 float32) under which a
// matrix product takes its single-threaded path, parallel only across batch entries.
const smallDotCrosses = 16 * 64 * 64

// matmul multiplies lhs [m, k] by rhs [k, n]. Products small enough for SimpleGo's
// single-threaded path are split into one batch entry per core, so they use all cores.
func (b *embeddedBuilder) matmul(e *emitter, lhs, rhs backends.Op, m, k, n int) backends.Op {
	p := b.parallelism
	if p > 1 && m*n <= smallDotCrosses && m%p == 0 && m/p >= 64 {
		l := e.reshape(lhs, p, m/p, k)
		r := e.do(func() (backends.Op, error) {
			s := e.shape(rhs)
			return b.Builder.BroadcastInDim(rhs, shapes.Make(s.DType, p, k, n), []int{1, 2})
		})
		out := e.do(func() (backends.Op, error) { return b.Builder.DotGeneral(l, []int{2}, []int{0}, r, []int{1}, []int{0}) })
		return e.reshape(out, m, n)
	}
	return e.do(func() (backends.Op, error) { return b.Builder.DotGeneral(lhs, []int{1}, nil, rhs, []int{0}, nil) })
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

func sameDims(a, b []int) bool { return slices.Equal(a, b) }
