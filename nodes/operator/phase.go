package operator

// Phase retrieval: the Fourier magnitude of the zero-padded image, per channel,
// y = |fftshift(fft2(pad(x)))| / √(N·M) (centred, orthonormal, not squared). The reference
// pads ⌊oversample/8 · H⌋ pixels on every side (64 at 256 with oversample 2.0, so
// 256 → 384); we pad each axis by ⌊oversample/8 · its length⌋. (The reference also
// ifftshifts the input first; that only changes phases, not magnitudes.)
//
// GoMLX has no FFT or complex numbers on the embedded backend, so the transform is two
// real matrix-product stages per axis (cos and sin), with the zero padding, the fftshift
// and the 1/√ normalisation folded into the matrices. The magnitude is
// √(re² + im² + 1e-12), whose gradient stays finite where the spectrum vanishes. Not
// linear.

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// magnitudeFloor is added under the square root of the magnitude.
const magnitudeFloor = 1e-12

// PhaseRetrieval measures Fourier magnitudes.
type PhaseRetrieval struct {
	oversample float64
	pipes      perSize[pipeline]
	squares    perSize[pipeline] // F on the padded grid, for ProjectMagnitude
}

// NewPhaseRetrieval is the reference's phase retrieval operator (task "phase_retrieval";
// reference oversample 2.0).
func NewPhaseRetrieval(oversample float64) (*PhaseRetrieval, error) {
	if !(oversample >= 0) || math.IsInf(oversample, 0) {
		return nil, fmt.Errorf("phase_retrieval: oversample %v must be a finite number ≥ 0", oversample)
	}
	return &PhaseRetrieval{oversample: oversample}, nil
}

// Name is "phase_retrieval".
func (p *PhaseRetrieval) Name() string { return "phase_retrieval" }

// Pad is the zero padding on each side of an axis of length n.
func (p *PhaseRetrieval) Pad(n int) int { return int(p.oversample / 8 * float64(n)) }

// MeasurementShape is [B, C, H + 2·Pad(H), W + 2·Pad(W)].
func (p *PhaseRetrieval) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if err := checkImage(p.Name(), x, 0, 0); err != nil {
		return shapes.Shape{}, err
	}
	d := x.Dimensions
	return shapes.Make(x.DType, d[0], d[1], d[2]+2*p.Pad(d[2]), d[3]+2*p.Pad(d[3])), nil
}

// Apply returns the Fourier magnitudes of x.
func (p *PhaseRetrieval) Apply(x *graph.Node) *graph.Node {
	mustShape(p, x)
	h, w := x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	z := p.pipes.get(h, w, func() pipeline {
		return pipeline{{alongW, centredDFT(w, p.Pad(w))}, {alongH, centredDFT(h, p.Pad(h))}}
	}).complex(x)
	return graph.Sqrt(graph.AddScalar(graph.Add(graph.Square(z.re), graph.Square(z.im)), magnitudeFloor))
}

// centredDFT maps a length-n signal to the fftshifted orthonormal DFT of its zero-padded
// version (length m = n + 2·pad): row k is frequency k − ⌊m/2⌋.
func centredDFT(n, pad int) cmat {
	m := n + 2*pad
	d := cmat{rows: m, cols: n, re: make([]float64, m*n), im: make([]float64, m*n)}
	scale := 1 / math.Sqrt(float64(m))
	for k := range m {
		f := k - m/2
		for j := range n {
			phase := ((f*(j+pad))%m + m) % m // exact integer phase keeps cos/sin accurate
			s, c := math.Sincos(-2 * math.Pi * float64(phase) / float64(m))
			d.re[k*n+j], d.im[k*n+j] = scale*c, scale*s
		}
	}
	return d
}
