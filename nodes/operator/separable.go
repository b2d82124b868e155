package operator

// Separable linear maps: most operators here are products of small matrices applied along
// the image rows and columns (resizing, banded blur matrices with the reflect padding built
// in, DFT matrices). They are built on the host in float64 and become graph constants, so
// every operator is a few matrix products — fast on the embedded backend, exactly
// differentiable, and with an exact adjoint: the same stages, conjugate-transposed, in
// reverse order.
//
// Inside a pipeline images use the layout [H, B, C, W], so that a matrix acting on the rows
// contracts the first axis and one acting on the columns the last: both are plain matrix
// products (no batch axes, no transposes) that the embedded backend runs on its GEMM.

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// cmat is a host matrix [rows, cols], row-major; im == nil means real.
type cmat struct {
	rows, cols int
	re, im     []float64
}

// adjoint is the conjugate transpose.
func (m cmat) adjoint() cmat {
	t := cmat{rows: m.cols, cols: m.rows, re: transpose(m.re, m.rows, m.cols)}
	if m.im != nil {
		t.im = transpose(m.im, m.rows, m.cols)
		for i := range t.im {
			t.im[i] = -t.im[i]
		}
	}
	return t
}

func transpose(a []float64, rows, cols int) []float64 {
	t := make([]float64, len(a))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

// Stage kinds.
const (
	alongH    = iota // matrix [out, H] on the rows
	alongW           // matrix [out, W] on the columns
	pointwise        // elementwise product with a [H, W] array (e.g. a transfer function)
)

type stage struct {
	kind int
	m    cmat
}

func (s stage) adjoint() stage {
	if s.kind == pointwise { // the adjoint of a product by g is the product by conj(g)
		c := s.m
		if c.im != nil {
			c.im = slices.Clone(c.im)
			for i := range c.im {
				c.im[i] = -c.im[i]
			}
		}
		return stage{pointwise, c}
	}
	return stage{s.kind, s.m.adjoint()}
}

// cnode is a possibly complex graph value; im == nil means real.
type cnode struct{ re, im *graph.Node }

// apply runs one stage; realOnly skips the imaginary part of the result.
func (s stage) apply(z cnode, realOnly bool) cnode {
	g, dt := z.re.Graph(), z.re.DType()
	var mr, mi *graph.Node
	dims := []int{s.m.rows, s.m.cols}
	if s.kind == pointwise {
		dims = []int{s.m.rows, 1, 1, s.m.cols}
	}
	mr = constant(g, dt, s.m.re, dims...)
	if s.m.im != nil {
		mi = constant(g, dt, s.m.im, dims...)
	}
	mul := func(m, x *graph.Node) *graph.Node {
		switch s.kind {
		case alongH:
			return graph.DotGeneral(m, []int{1}, nil, x, []int{0}, nil)
		case alongW:
			return graph.DotGeneral(x, []int{3}, nil, m, []int{1}, nil)
		}
		return graph.Mul(m, x)
	}
	var out cnode
	switch {
	case mi == nil && z.im == nil:
		out.re = mul(mr, z.re)
	case mi == nil:
		out.re = mul(mr, z.re)
		if !realOnly {
			out.im = mul(mr, z.im)
		}
	case z.im == nil:
		out.re = mul(mr, z.re)
		if !realOnly {
			out.im = mul(mi, z.re)
		}
	default:
		out.re = graph.Sub(mul(mr, z.re), mul(mi, z.im))
		if !realOnly {
			out.im = graph.Add(mul(mr, z.im), mul(mi, z.re))
		}
	}
	return out
}

// pipeline is a composition of stages, applied first to last to a real NCHW image.
type pipeline []stage

// adjoint is the pipeline of the adjoint map (for a real result taken at the end).
func (p pipeline) adjoint() pipeline {
	q := make(pipeline, len(p))
	for i, s := range p {
		q[len(p)-1-i] = s.adjoint()
	}
	return q
}

// complex runs the pipeline on NCHW x and returns both parts, NCHW.
func (p pipeline) complex(x *graph.Node) cnode {
	z := p.run(x, false)
	if z.im != nil {
		z.im = fromInternal(z.im)
	}
	return cnode{fromInternal(z.re), z.im}
}

// real runs the pipeline on NCHW x and returns the real part of the result, NCHW.
func (p pipeline) real(x *graph.Node) *graph.Node { return fromInternal(p.run(x, true).re) }

func (p pipeline) run(x *graph.Node, realOnly bool) cnode {
	z := cnode{re: graph.TransposeAllDims(x, 2, 0, 1, 3)}
	for i, s := range p {
		z = s.apply(z, realOnly && i == len(p)-1)
	}
	return z
}

func fromInternal(x *graph.Node) *graph.Node { return graph.TransposeAllDims(x, 1, 2, 0, 3) }

// constant makes a graph constant of dtype dt from float64 host data.
func constant(g *graph.Graph, dt dtypes.DType, data []float64, dims ...int) *graph.Node {
	if dt == dtypes.Float32 {
		f := make([]float32, len(data))
		for i, v := range data {
			f[i] = float32(v)
		}
		return graph.Const(g, tensors.FromFlatDataAndDimensions(f, dims...))
	}
	return graph.Const(g, tensors.FromFlatDataAndDimensions(slices.Clone(data), dims...))
}

// perSize caches what an operator builds for one image size (H, W).
type perSize[T any] struct {
	mu sync.Mutex
	m  map[[2]int]T
}

func (c *perSize[T]) get(h, w int, build func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[[2]int{h, w}]; ok {
		return v
	}
	if c.m == nil {
		c.m = map[[2]int]T{}
	}
	v := build()
	c.m[[2]int{h, w}] = v
	return v
}

// checkImage validates an input shape: NCHW, float32 or float64, and — when h, w > 0 —
// the spatial size the operator was built for.
func checkImage(name string, x shapes.Shape, h, w int) error {
	if x.Rank() != 4 {
		return fmt.Errorf("%s: input must be an NCHW batch (rank 4), got shape %s", name, x)
	}
	if x.DType != dtypes.Float32 && x.DType != dtypes.Float64 {
		return fmt.Errorf("%s: input dtype is %s, want float32 or float64", name, x.DType)
	}
	for i, want := range []int{h, w} {
		if got := x.Dimensions[2+i]; want > 0 && got != want {
			return fmt.Errorf("%s: input %s (dimension %d of NCHW) is %d, the operator was built for %d",
				name, [2]string{"height", "width"}[i], 2+i, got, want)
		}
	}
	return nil
}

// mustShape panics with MeasurementShape's error: Apply's contract is that x passed it,
// and GoMLX graph building reports errors by panicking.
func mustShape(op Operator, x *graph.Node) {
	if _, err := op.MeasurementShape(x.Shape()); err != nil {
		panic(err)
	}
}

// reflectIndex maps index j of a reflect-padded axis of length n back into [0, n), without
// repeating the edge pixel (PyTorch's "reflect"); valid for −n < j < 2n−1.
func reflectIndex(j, n int) int {
	if j < 0 {
		j = -j
	}
	if j >= n {
		j = 2*(n-1) - j
	}
	return j
}
