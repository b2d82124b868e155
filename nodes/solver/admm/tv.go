package admm

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// The image axes of [B, C, H, W]; TV and its prox act on them, per sample and channel.
const axisH, axisW = 2, 3

// forwardDiff is x[i+1] − x[i] along axis, 0 at the last index (Neumann boundary).
func forwardDiff(x *graph.Node, axis int) *graph.Node {
	n := x.Shape().Dimensions[axis]
	if n < 2 {
		return graph.ZerosLike(x)
	}
	r := make([]graph.SliceAxisSpec, x.Rank())
	for i := range r {
		r[i] = graph.AxisRange()
	}
	r[axis] = graph.AxisRange(1, n)
	hi := graph.Slice(x, r...)
	r[axis] = graph.AxisRange(0, n-1)
	lo := graph.Slice(x, r...)
	return graph.Concatenate([]*graph.Node{graph.Sub(hi, lo), zeroSlab(x, axis)}, axis)
}

// shiftDown is p[i−1] along axis, 0 at index 0.
func shiftDown(p *graph.Node, axis int) *graph.Node {
	n := p.Shape().Dimensions[axis]
	if n < 2 {
		return graph.ZerosLike(p)
	}
	r := make([]graph.SliceAxisSpec, p.Rank())
	for i := range r {
		r[i] = graph.AxisRange()
	}
	r[axis] = graph.AxisRange(0, n-1)
	return graph.Concatenate([]*graph.Node{zeroSlab(p, axis), graph.Slice(p, r...)}, axis)
}

func zeroSlab(x *graph.Node, axis int) *graph.Node {
	d := append([]int(nil), x.Shape().Dimensions...)
	d[axis] = 1
	return graph.Zeros(x.Graph(), shapes.Make(x.DType(), d...))
}

// TV is each sample's isotropic total variation Σ √(|∇_h x|² + |∇_v x|²) over channels and
// pixels, with forward differences and Neumann boundary; x is [B, C, H, W], the result [B].
func TV(x *graph.Node) *graph.Node {
	gh, gv := forwardDiff(x, axisH), forwardDiff(x, axisW)
	return graph.ReduceSum(graph.Sqrt(graph.Add(graph.Square(gh), graph.Square(gv))), 1, 2, 3)
}

// ProxTV is argmin_u ½‖u − f‖² + weight·TV(u) approximated by iters updates of Chambolle's
// dual variable, step τ = 1/4, from p = 0, inside the graph; f is [B, C, H, W].
//
// It is scikit-image's denoise_tv_chambolle(f, weight, eps=0, max_num_iter=iters+1) per
// channel, operation for operation: that loop returns the image of the last-but-one dual
// update. weight ≤ 0 or iters < 1 return f.
func ProxTV(f *graph.Node, weight float64, iters int) *graph.Node {
	if weight <= 0 || iters < 1 {
		return f
	}
	const tau = 1.0 / 4 // 1/(2·ndim) for the two image axes
	// d = −div p (backward differences), as skimage builds it.
	image := func(ph, pv *graph.Node) *graph.Node {
		d := graph.Neg(graph.Add(ph, pv))
		d = graph.Add(d, shiftDown(ph, axisH))
		d = graph.Add(d, shiftDown(pv, axisW))
		return graph.Add(f, d)
	}
	ph, pv := graph.ZerosLike(f), graph.ZerosLike(f)
	out := f
	for k := 0; k < iters; k++ {
		if k > 0 {
			out = image(ph, pv)
		}
		gh, gv := forwardDiff(out, axisH), forwardDiff(out, axisW)
		norm := graph.Sqrt(graph.Add(graph.Square(gh), graph.Square(gv)))
		den := graph.AddScalar(graph.MulScalar(norm, tau/weight), 1)
		ph = graph.Div(graph.Sub(ph, graph.MulScalar(gh, tau)), den)
		pv = graph.Div(graph.Sub(pv, graph.MulScalar(gv, tau)), den)
	}
	return image(ph, pv)
}
