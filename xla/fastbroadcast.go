package xla

import (
	"runtime"
	"sync"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// BroadcastInDim walks SimpleGo's broadcastIterator once per output element; fastBroadcast
// merges output axes that are alike (all copied from the operand, or all repeated) and
// builds the output from row copies: copy() for runs the operand holds, one value
// repeated by doubling copies for a broadcast innermost run, and doubling copies of a
// finished block for outer broadcast axes. Concatenate is already row copies in SimpleGo;
// fastConcatenate splits them across cores for large outputs.

//go:linkname simplegoExecBroadcastInDim github.com/gomlx/gomlx/backends/simplego.execBroadcastInDim
func simplegoExecBroadcastInDim(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecConcatenate github.com/gomlx/gomlx/backends/simplego.execConcatenate
func simplegoExecConcatenate(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

func init() {
	installOwned(backends.OpTypeBroadcastInDim, fastBroadcastInDim, simplegoExecBroadcastInDim)
	installOwned(backends.OpTypeConcatenate, fastConcatenate, simplegoExecConcatenate)
}

// broadcastGroups are the output's merged axes: dims, whether each repeats the operand
// (broadcast), and the sizes of one output and one operand block below each axis.
type broadcastGroups struct {
	dims            []int
	broadcast       []bool
	outSub, operSub []int
}

func planBroadcastInDim(operandDims, outDims, axes []int) (g broadcastGroups, ok bool) {
	if len(axes) != len(operandDims) {
		return g, false
	}
	from := make([]int, len(outDims)) // the operand's dimension on each output axis
	for i := range from {
		from[i] = 1
	}
	for i, a := range axes {
		if a < 0 || a >= len(outDims) || (i > 0 && a <= axes[i-1]) {
			return g, false // out-of-order axes would transpose: not a row copy
		}
		from[a] = operandDims[i]
	}
	for i, d := range outDims {
		if from[i] != d && from[i] != 1 {
			return g, false
		}
		if d == 1 {
			continue
		}
		b := from[i] == 1
		if n := len(g.dims); n > 0 && g.broadcast[n-1] == b {
			g.dims[n-1] *= d
			continue
		}
		g.dims, g.broadcast = append(g.dims, d), append(g.broadcast, b)
	}
	g.outSub, g.operSub = make([]int, len(g.dims)), make([]int, len(g.dims))
	o, p := 1, 1
	for i := len(g.dims) - 1; i >= 0; i-- {
		g.outSub[i], g.operSub[i] = o, p
		o *= g.dims[i]
		if !g.broadcast[i] {
			p *= g.dims[i]
		}
	}
	return g, true
}

func fastBroadcastInDim(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, _ []bool) *simplego.Buffer {
	s, err := b.BufferShape(in[0])
	axes, ok1 := nodeIntSlice(n)
	outDims, ok2 := nodeOutputDims(n)
	if err != nil || !ok1 || !ok2 {
		return nil
	}
	g, ok := planBroadcastInDim(s.Dimensions, outDims, axes)
	if !ok || !copyableDType(s.DType) {
		return nil
	}
	out := b.NewBuffer(shapes.Make(s.DType, outDims...))
	if out == nil {
		return nil
	}
	src, _ := b.BufferData(in[0])
	dst, _ := b.BufferData(out)
	var done bool
	switch x := src.(type) {
	case []float32:
		done = broadcastFill(g, x, dst.([]float32))
	case []float64:
		done = broadcastFill(g, x, dst.([]float64))
	case []int32:
		done = broadcastFill(g, x, dst.([]int32))
	case []int64:
		done = broadcastFill(g, x, dst.([]int64))
	case []bool:
		done = broadcastFill(g, x, dst.([]bool))
	}
	if !done {
		b.BufferFinalize(out)
		return nil
	}
	return out
}

// copyableDType says whether fastBroadcastInDim and fastConcatenate handle dtype (the
// dtypes of their type switches); SimpleGo does the rest.
func copyableDType(dtype dtypes.DType) bool {
	switch dtype {
	case dtypes.Float32, dtypes.Float64, dtypes.Int32, dtypes.Int64, dtypes.Bool:
		return true
	}
	return false
}

// broadcastFill writes the whole output, splitting the outermost merged axis across cores
// for large outputs; false if the sizes do not match the plan.
func broadcastFill[T any](g broadcastGroups, src, dst []T) bool {
	if len(g.dims) == 0 { // a single element
		if len(src) != 1 || len(dst) != 1 {
			return false
		}
		dst[0] = src[0]
		return true
	}
	operandSize := g.operSub[0]
	if !g.broadcast[0] {
		operandSize *= g.dims[0]
	}
	if len(dst) != g.dims[0]*g.outSub[0] || len(src) != operandSize {
		return false
	}
	if len(dst) == 0 {
		return true
	}
	d := g.dims[0]
	workers := min(runtime.GOMAXPROCS(0), d)
	if len(dst) < parallelMinSize || workers < 2 {
		fillRange(g, 0, 0, d, dst, src)
		return true
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); fillRange(g, 0, w*d/workers, (w+1)*d/workers, dst, src) }()
	}
	wg.Wait()
	return true
}

// fillRange writes blocks [lo, hi) of merged axis k, where out is the output block of one
// index of the axes above k and in the matching operand block.
func fillRange[T any](g broadcastGroups, k, lo, hi int, out, in []T) {
	if lo >= hi {
		return
	}
	sub, inSub := g.outSub[k], g.operSub[k]
	if k == len(g.dims)-1 { // sub == 1
		if g.broadcast[k] {
			out[lo] = in[0]
			repeatBlock(out[lo:hi], 1)
		} else {
			copy(out[lo:hi], in[lo:hi])
		}
		return
	}
	if g.broadcast[k] {
		fillRange(g, k+1, 0, g.dims[k+1], out[lo*sub:(lo+1)*sub], in[:inSub])
		repeatBlock(out[lo*sub:hi*sub], sub)
		return
	}
	for i := lo; i < hi; i++ {
		fillRange(g, k+1, 0, g.dims[k+1], out[i*sub:(i+1)*sub], in[i*inSub:(i+1)*inSub])
	}
}

// repeatBlock fills o with copies of its first n elements, doubling the copied run each
// time (few, long copy() calls).
func repeatBlock[T any](o []T, n int) {
	for filled := n; filled < len(o); filled *= 2 {
		copy(o[filled:], o[:filled])
	}
}

func fastConcatenate(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, _ []bool) *simplego.Buffer {
	axis, ok1 := nodeInt(n)
	outDims, ok2 := nodeOutputDims(n)
	if !ok1 || !ok2 || len(in) == 0 || axis < 0 || axis >= len(outDims) {
		return nil
	}
	first, err := b.BufferShape(in[0])
	if err != nil || !copyableDType(first.DType) {
		return nil
	}
	// blocks[i]: the elements input i holds per index of the axes before axis.
	blocks := make([]int, len(in))
	srcs := make([]any, len(in))
	inner := shapes.Make(first.DType, outDims[axis+1:]...).Size()
	outer := shapes.Make(first.DType, outDims[:axis]...).Size()
	for i, buf := range in {
		s, err := b.BufferShape(buf)
		if err != nil || s.DType != first.DType || s.Rank() != len(outDims) {
			return nil
		}
		blocks[i] = s.Dimensions[axis] * inner
		srcs[i], _ = b.BufferData(buf)
	}
	out := b.NewBuffer(shapes.Make(first.DType, outDims...))
	if out == nil {
		return nil
	}
	dst, _ := b.BufferData(out)
	var done bool
	switch d := dst.(type) {
	case []float32:
		done = concatRows(d, srcs, blocks, outer)
	case []float64:
		done = concatRows(d, srcs, blocks, outer)
	case []int32:
		done = concatRows(d, srcs, blocks, outer)
	case []int64:
		done = concatRows(d, srcs, blocks, outer)
	case []bool:
		done = concatRows(d, srcs, blocks, outer)
	}
	if !done {
		b.BufferFinalize(out)
		return nil
	}
	return out
}

// concatRows writes dst as outer rows, each the concatenation of one block of every
// input; cores take equal ranges of dst. False if the sizes do not add up.
func concatRows[T any](dst []T, srcAny []any, blocks []int, outer int) bool {
	srcs := make([][]T, len(srcAny))
	rowLen := 0
	for i, s := range srcAny {
		var ok bool
		if srcs[i], ok = s.([]T); !ok || len(srcs[i]) != outer*blocks[i] {
			return false
		}
		rowLen += blocks[i]
	}
	if len(dst) != outer*rowLen {
		return false
	}
	if rowLen == 0 {
		return true
	}
	offsets := make([]int, len(blocks)+1) // of each input's block within a row
	for i, n := range blocks {
		offsets[i+1] = offsets[i] + n
	}
	copyRange := func(lo, hi int) {
		for r := lo / rowLen; r*rowLen < hi; r++ {
			for i, src := range srcs {
				start := r*rowLen + offsets[i]
				s, e := max(start, lo), min(start+blocks[i], hi)
				if s < e {
					copy(dst[s:e], src[r*blocks[i]+s-start:])
				}
			}
		}
	}
	splitAcrossCores(len(dst), len(dst), copyRange)
	return true
}
