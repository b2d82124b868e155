package operator

// Super-resolution: downsampling by an integer factor s, y = R x Cᵀ per channel with one
// matrix per axis. Two resizers:
//
//   - "super_resolution": MATLAB imresize's bicubic resize (the reference's Resizer): Keys'
//     cubic (a = −0.5), antialiased for a scale below 1 (weights s·k(s·d) over a support
//     widened by 1/s), output pixel x (1-based) centred on input coordinate
//     u = x/s + 0.5·(1 − 1/s), weights normalised per output pixel, symmetric borders that
//     repeat the edge pixel.
//   - "avgpool_sr": the mean of each s×s block.
//
// Both are Linear (adjoint Rᵀ y C) and Projectors in the ILVR form
// x + A⁺(y − A x), with A⁺ = R⁺ ⊗ C⁺ and R⁺ = Rᵀ(R Rᵀ)⁻¹, so A A⁺ = I. For pooling R⁺ is
// the nearest-neighbour upsampling; for bicubic it is computed on the host with gonum.

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"gonum.org/v1/gonum/mat"
)

// SuperResolution downsamples by an integer factor; it works on any size divisible by it.
type SuperResolution struct {
	name   string
	factor int
	axis   func(n, factor int) []float64 // [n/factor, n] matrix of one axis
	mats   perSize[srPipes]
	svds   perSize[sepSVD] // the SVD (svd.go)
	separableSVD
}

type srPipes struct{ fwd, adj, pinv pipeline }

// NewBicubicSR is the reference's super-resolution operator (task "super_resolution").
func NewBicubicSR(factor int) (*SuperResolution, error) {
	return newSR("super_resolution", factor, func(n, f int) []float64 { return ResizeMatrix(n, 1/float64(f)) })
}

// NewAvgPoolSR averages factor×factor blocks (task "avgpool_sr").
func NewAvgPoolSR(factor int) (*SuperResolution, error) {
	return newSR("avgpool_sr", factor, func(n, f int) []float64 {
		m := make([]float64, (n/f)*n)
		for i := range n / f {
			for k := range f {
				m[i*n+i*f+k] = 1 / float64(f)
			}
		}
		return m
	})
}

func newSR(name string, factor int, axis func(n, factor int) []float64) (*SuperResolution, error) {
	if factor < 1 {
		return nil, fmt.Errorf("%s: scale_factor %d must be a positive integer", name, factor)
	}
	s := &SuperResolution{name: name, factor: factor, axis: axis}
	s.separableSVD = separableSVD{self: s, factor: factor, svdFor: s.svd}
	return s, nil
}

// Name is "super_resolution" (bicubic) or "avgpool_sr".
func (s *SuperResolution) Name() string { return s.name }

// Factor is the downsampling factor.
func (s *SuperResolution) Factor() int { return s.factor }

// MeasurementShape is [B, C, H/s, W/s]; H and W must be divisible by s.
func (s *SuperResolution) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if err := checkImage(s.name, x, 0, 0); err != nil {
		return shapes.Shape{}, err
	}
	d := x.Dimensions
	for i, what := range []string{"height", "width"} {
		if d[2+i]%s.factor != 0 {
			return shapes.Shape{}, fmt.Errorf("%s: input %s (dimension %d of NCHW) %d is not divisible by scale_factor %d", s.name, what, 2+i, d[2+i], s.factor)
		}
	}
	return shapes.Make(x.DType, d[0], d[1], d[2]/s.factor, d[3]/s.factor), nil
}

func (s *SuperResolution) pipes(h, w int) srPipes {
	return s.mats.get(h, w, func() srPipes {
		r := cmat{rows: h / s.factor, cols: h, re: s.axis(h, s.factor)}
		c := cmat{rows: w / s.factor, cols: w, re: s.axis(w, s.factor)}
		fwd := pipeline{{alongW, c}, {alongH, r}}
		return srPipes{fwd, fwd.adjoint(), pipeline{{alongW, rightInverse(c)}, {alongH, rightInverse(r)}}}
	})
}

// Apply downsamples x.
func (s *SuperResolution) Apply(x *graph.Node) *graph.Node {
	mustShape(s, x)
	d := x.Shape().Dimensions
	return s.pipes(d[2], d[3]).fwd.real(x)
}

// Adjoint maps a low-resolution y back: Rᵀ y C (for pooling: nearest upsampling / s²).
func (s *SuperResolution) Adjoint(y *graph.Node) *graph.Node {
	d := y.Shape().Dimensions
	return s.pipes(d[2]*s.factor, d[3]*s.factor).adj.real(y)
}

// Project returns x + A⁺(y − A x), which A maps to y exactly.
func (s *SuperResolution) Project(x, y *graph.Node) *graph.Node {
	d := x.Shape().Dimensions
	return graph.Add(x, s.pipes(d[2], d[3]).pinv.real(graph.Sub(y, s.Apply(x))))
}

// rightInverse returns Mᵀ(M Mᵀ)⁻¹ for a real matrix of full row rank.
func rightInverse(m cmat) cmat {
	a := mat.NewDense(m.rows, m.cols, append([]float64(nil), m.re...))
	var gram, inv, p mat.Dense
	gram.Mul(a, a.T())
	if err := inv.Inverse(&gram); err != nil {
		panic(fmt.Sprintf("operator: resize matrix %d×%d has no right inverse: %v", m.rows, m.cols, err))
	}
	p.Mul(a.T(), &inv)
	return cmat{rows: m.cols, cols: m.rows, re: p.RawMatrix().Data}
}

// cubic is Keys' cubic convolution kernel with a = −0.5 (MATLAB's "bicubic").
func cubic(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return (1.5*x-2.5)*x*x + 1
	case x <= 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// ResizeMatrix returns MATLAB imresize's bicubic resize of one axis of length n by scale,
// as a row-major [out, n] matrix with out = ⌈n·scale⌉: row x holds the weights of output
// pixel x (antialiased when scale < 1, normalised, symmetric borders). It is nil unless
// n ≥ 1 and scale > 0.
func ResizeMatrix(n int, scale float64) []float64 {
	if n < 1 || !(scale > 0) || math.IsInf(scale, 0) {
		return nil
	}
	out := int(math.Ceil(float64(n) * scale))
	kernel, width := cubic, 4.0
	if scale < 1 {
		kernel = func(d float64) float64 { return scale * cubic(scale*d) }
		width /= scale
	}
	taps := int(math.Ceil(width)) + 2
	m := make([]float64, out*n)
	w := make([]float64, taps)
	for x := 1; x <= out; x++ {
		u := float64(x)/scale + 0.5*(1-1/scale)
		left := int(math.Floor(u - width/2))
		sum := 0.0
		for t := range w {
			w[t] = kernel(u - float64(left+t))
			sum += w[t]
		}
		for t := range w {
			// 1-based input index left+t, mirrored with the edge repeated: period 2n.
			j := ((left+t-1)%(2*n) + 2*n) % (2 * n)
			if j >= n {
				j = 2*n - 1 - j
			}
			m[(x-1)*n+j] += w[t] / sum
		}
	}
	return m
}
