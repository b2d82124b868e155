package xla

import (
	"runtime"
	"slices"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ReduceSum and ReduceMax (GroupNorm statistics, softmax, bias and affine gradients) walk
// an index iterator per element in SimpleGo. fastReduce merges adjacent axes that are
// alike (all reduced or all kept) and walks the operand row by row: a reduced innermost
// axis folds a row into one output value, a kept one adds a row into an output row.
// Every output value still accumulates its inputs in the operand's flat order, starting
// from SimpleGo's initial value, so results are bit-identical to SimpleGo's; the work is
// split across cores over a kept axis, which gives each core its own outputs.

//go:linkname simplegoExecReduce github.com/gomlx/gomlx/backends/simplego.execReduce
func simplegoExecReduce(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

func init() {
	installOwned(backends.OpTypeReduceSum, fastReduce(reduceSum), simplegoExecReduce)
	installOwned(backends.OpTypeReduceMax, fastReduce(reduceMax), simplegoExecReduce)
}

type reduceKind int

const (
	reduceSum reduceKind = iota
	reduceMax
)

// reducePlan is the operand's merged axes: their dimensions, whether each is reduced, and
// each one's flat stride in the output (0 for reduced axes).
type reducePlan struct {
	dims      []int
	reduced   []bool
	outStride []int
	outDims   []int // the output's real dimensions
}

func planReduce(inDims, axes []int) (p reducePlan, ok bool) {
	isReduced := make([]bool, len(inDims))
	for _, a := range axes {
		if a < 0 || a >= len(inDims) || isReduced[a] {
			return p, false
		}
		isReduced[a] = true
	}
	for i, d := range inDims {
		if !isReduced[i] {
			p.outDims = append(p.outDims, d)
		}
		if d == 1 {
			continue
		}
		if n := len(p.dims); n > 0 && p.reduced[n-1] == isReduced[i] {
			p.dims[n-1] *= d
			continue
		}
		p.dims, p.reduced = append(p.dims, d), append(p.reduced, isReduced[i])
	}
	p.outStride = make([]int, len(p.dims))
	s := 1
	for i := len(p.dims) - 1; i >= 0; i-- {
		if !p.reduced[i] {
			p.outStride[i] = s
			s *= p.dims[i]
		}
	}
	return p, true
}

func fastReduce(kind reduceKind) ownedExecutor {
	return func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, _ []bool) *simplego.Buffer {
		s, err := b.BufferShape(in[0])
		axes, ok := nodeIntSlice(n)
		if err != nil || !ok || len(axes) == 0 || (s.DType != dtypes.Float32 && s.DType != dtypes.Float64) {
			return nil // no axes is an identity, which SimpleGo does without a copy
		}
		p, ok := planReduce(s.Dimensions, axes)
		if !ok {
			return nil
		}
		if dims, ok := nodeOutputDims(n); !ok || !slices.Equal(dims, p.outDims) {
			return nil
		}
		out := b.NewBuffer(shapes.Make(s.DType, p.outDims...))
		if out == nil {
			return nil
		}
		src, _ := b.BufferData(in[0])
		dst, _ := b.BufferData(out)
		switch x := src.(type) {
		case []float32:
			reduceRows(kind, p, x, dst.([]float32), s.DType.LowestValue().(float32))
		case []float64:
			reduceRows(kind, p, x, dst.([]float64), s.DType.LowestValue().(float64))
		}
		return out
	}
}

// reduceRows reduces src (row-major over p.dims) into out; lowest is ReduceMax's start.
func reduceRows[T float32 | float64](kind reduceKind, p reducePlan, src, out []T, lowest T) {
	start := T(0)
	if kind == reduceMax {
		start = lowest
	}
	for i := range out {
		out[i] = start
	}
	if len(src) == 0 || len(p.dims) == 0 { // empty operand, or a single element
		if len(src) == 1 && len(out) == 1 {
			out[0] = fold(kind, start, src)
		}
		return
	}
	// Split over the outermost kept axis large enough to give every core some outputs.
	split, workers := -1, runtime.GOMAXPROCS(0)
	if len(src) >= parallelMinSize && workers > 1 {
		for i, r := range p.reduced {
			if !r && p.dims[i] >= workers {
				split = i
				break
			}
		}
	}
	if split < 0 {
		reduceRange(kind, p, src, out, -1, 0, 0)
		return
	}
	splitAcrossCores(p.dims[split], len(src), func(from, to int) {
		reduceRange(kind, p, src, out, split, from, to)
	})
}

// reduceRange walks the operand's rows in flat order, with axis split (if ≥ 0) limited to
// [lo, hi).
func reduceRange[T float32 | float64](kind reduceKind, p reducePlan, src, out []T, split, lo, hi int) {
	last := len(p.dims) - 1
	n := p.dims[last]
	colLo, colHi := 0, n
	if split == last {
		colLo, colHi = lo, hi
	}
	// Flat strides of the operand over the merged axes.
	inStride := make([]int, len(p.dims))
	s := 1
	for i := last; i >= 0; i-- {
		inStride[i] = s
		s *= p.dims[i]
	}
	idx := make([]int, last) // position over the outer axes
	if split >= 0 && split < last {
		idx[split] = lo
	}
	for {
		in, o := 0, 0
		for i, v := range idx {
			in += v * inStride[i]
			o += v * p.outStride[i]
		}
		row := src[in+colLo : in+colHi]
		if p.reduced[last] {
			out[o] = fold(kind, out[o], row)
		} else {
			accumulate(kind, out[o+colLo:o+colHi], row)
		}
		// Advance the odometer over the outer axes.
		i := last - 1
		for ; i >= 0; i-- {
			end := p.dims[i]
			if i == split {
				end = hi
			}
			if idx[i]++; idx[i] < end {
				break
			}
			idx[i] = 0
			if i == split {
				idx[i] = lo
			}
		}
		if i < 0 {
			return
		}
	}
}

// fold returns acc combined with every value of row, in order.
func fold[T float32 | float64](kind reduceKind, acc T, row []T) T {
	if kind == reduceMax {
		for _, v := range row {
			acc = max(acc, v)
		}
		return acc
	}
	for _, v := range row {
		acc += v
	}
	return acc
}

// accumulate combines row into acc element by element.
func accumulate[T float32 | float64](kind reduceKind, acc, row []T) {
	acc = acc[:len(row)]
	if kind == reduceMax {
		for j, v := range row {
			acc[j] = max(acc[j], v)
		}
		return
	}
	for j, v := range row {
		acc[j] += v
	}
}
