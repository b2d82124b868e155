package operator

// Magnitude projection for phase retrieval (MagnitudeProjector): the ER, HIO and OSS
// solvers iterate in the padded domain [P_H, P_W] = [H + 2·Pad(H), W + 2·Pad(W)], where
// the measurement is y = |F z| for z = ZeroPad(x) and F the centred orthonormal DFT. F and
// F⁻¹ = Fᴴ are real matrix stages per axis, as in Apply.

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ZeroPad implements MagnitudeProjector: x [B, C, H, W] at rows Pad(H)…, columns Pad(W)…
// of a zero [B, C, H + 2·Pad(H), W + 2·Pad(W)].
func (p *PhaseRetrieval) ZeroPad(x *graph.Node) *graph.Node {
	mustShape(p, x)
	d := x.Shape().Dimensions
	g, dt := x.Graph(), x.DType()
	ph, pw := p.Pad(d[2]), p.Pad(d[3])
	if pw > 0 {
		z := graph.Zeros(g, shapes.Make(dt, d[0], d[1], d[2], pw))
		x = graph.Concatenate([]*graph.Node{z, x, z}, 3)
	}
	if ph > 0 {
		z := graph.Zeros(g, shapes.Make(dt, d[0], d[1], ph, d[3]+2*pw))
		x = graph.Concatenate([]*graph.Node{z, x, z}, 2)
	}
	return x
}

// unpadded returns n with n + 2·Pad(n) = m.
func (p *PhaseRetrieval) unpadded(m int) int {
	for n := 1; n <= m; n++ {
		if n+2*p.Pad(n) == m {
			return n
		}
	}
	panic(fmt.Errorf("phase_retrieval: no image size pads to %d with oversample %g", m, p.oversample))
}

// Crop implements MagnitudeProjector: the window of z where ZeroPad puts the image.
func (p *PhaseRetrieval) Crop(z *graph.Node) *graph.Node {
	d := z.Shape().Dimensions
	h, w := p.unpadded(d[2]), p.unpadded(d[3])
	return graph.Slice(z, graph.AxisRange(), graph.AxisRange(),
		graph.AxisRange(p.Pad(h), p.Pad(h)+h), graph.AxisRange(p.Pad(w), p.Pad(w)+w))
}

// ProjectMagnitude implements MagnitudeProjector: Re F⁻¹(y · F z / |F z|), with phase 0
// where F z = 0.
func (p *PhaseRetrieval) ProjectMagnitude(z, y *graph.Node) *graph.Node {
	d := z.Shape().Dimensions
	if !slices.Equal(d, y.Shape().Dimensions) {
		panic(fmt.Errorf("phase_retrieval: ProjectMagnitude's z %v and y %v must have the same shape", d, y.Shape().Dimensions))
	}
	fwd := p.squares.get(d[2], d[3], func() pipeline {
		return pipeline{{alongW, centredDFT(d[3], 0)}, {alongH, centredDFT(d[2], 0)}}
	})
	f := fwd.complex(z)
	mag := graph.Sqrt(graph.Add(graph.Square(f.re), graph.Square(f.im)))
	nonzero := graph.GreaterThan(mag, graph.ZerosLike(mag))
	scale := graph.Div(y, graph.Where(nonzero, mag, graph.OnesLike(mag)))
	re := graph.Where(nonzero, graph.Mul(f.re, scale), y)
	im := graph.Where(nonzero, graph.Mul(f.im, scale), graph.ZerosLike(y))
	return fromInternal(runFrom(fwd.adjoint(), cnode{toInternal(re), toInternal(im)}, true).re)
}

func toInternal(x *graph.Node) *graph.Node { return graph.TransposeAllDims(x, 2, 0, 1, 3) }

// runFrom runs p on a (possibly complex) value already in the internal layout.
func runFrom(p pipeline, z cnode, realOnly bool) cnode {
	for i, s := range p {
		z = s.apply(z, realOnly && i == len(p)-1)
	}
	return z
}
