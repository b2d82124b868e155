package operator

// SVDs of the linear operators (Singular), and the pseudo-inverse and data proximal map
// they give. A separable operator y = R x Cᵀ per channel (super-resolution, a blur with a
// rank-1 kernel) has the SVD of the Kronecker product R ⊗ C: with R = U_R Σ_R V_Rᵀ and
// C = U_C Σ_C V_Cᵀ (gonum, on the host), Vt(x) = V_Rᵀ x V_C, U(c) = U_R c U_Cᵀ and
// s[i, j] = σ_R[i]·σ_C[j]. Inpainting and the identity are diagonal: U = V = I.
// Each operator's Apply and Adjoint are unchanged: the SVD is a separate set of matrices.

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"gonum.org/v1/gonum/mat"
)

// sepSVD is the SVD of x ↦ R x Cᵀ with R [h, H] and C [w, W], h ≤ H, w ≤ W.
type sepSVD struct {
	h, w         int
	vt, v, ut, u pipeline
	s            []float64 // [h*w], row-major
}

// hostSVD returns U [r, r], V [c, c] and the min(r, c) singular values of a real r×c matrix.
func hostSVD(m cmat) (u, v cmat, s []float64) {
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(m.rows, m.cols, append([]float64(nil), m.re...)), mat.SVDFull) {
		panic(fmt.Sprintf("operator: SVD of a %d×%d matrix did not converge", m.rows, m.cols))
	}
	var ud, vd mat.Dense
	svd.UTo(&ud)
	svd.VTo(&vd)
	dense := func(d *mat.Dense) cmat {
		r, c := d.Dims()
		out := cmat{rows: r, cols: c, re: make([]float64, 0, r*c)}
		for i := range r {
			out.re = append(out.re, d.RawRowView(i)...)
		}
		return out
	}
	return dense(&ud), dense(&vd), svd.Values(nil)
}

func newSepSVD(r, c cmat) sepSVD {
	ur, vr, sr := hostSVD(r)
	uc, vc, sc := hostSVD(c)
	s := make([]float64, 0, r.rows*c.rows)
	for _, a := range sr {
		for _, b := range sc {
			s = append(s, a*b)
		}
	}
	return sepSVD{
		h: r.rows, w: c.rows, s: s,
		vt: pipeline{{alongW, vc.adjoint()}, {alongH, vr.adjoint()}},
		v:  pipeline{{alongW, vc}, {alongH, vr}},
		ut: pipeline{{alongW, uc.adjoint()}, {alongH, ur.adjoint()}},
		u:  pipeline{{alongW, uc}, {alongH, ur}},
	}
}

// singulars is s as a [1, C, h, w] node in x's dtype.
func (d sepSVD) singulars(g *graph.Graph, x shapes.Shape) *graph.Node {
	return graph.BroadcastToDims(constant(g, x.DType, d.s, 1, 1, d.h, d.w), 1, x.Dimensions[1], d.h, d.w)
}

// withBatch is x with batch size b.
func withBatch(x shapes.Shape, b int) shapes.Shape {
	d := append([]int(nil), x.Dimensions...)
	d[0] = b
	return shapes.Make(x.DType, d...)
}

// separableSVD gives a separable operator (self) its Singular, PseudoInverter and
// DataProxer methods from the SVD of its axis matrices for an H×W input (svdFor); the
// measurement is (H/factor)×(W/factor).
type separableSVD struct {
	self   Singular
	factor int
	svdFor func(hh, ww int) sepSVD
}

// Vt implements Singular.
func (o separableSVD) Vt(x *graph.Node) *graph.Node {
	mustShape(o.self, x)
	d := x.Shape().Dimensions
	return o.svdFor(d[2], d[3]).vt.real(x)
}

// V implements Singular.
func (o separableSVD) V(c *graph.Node) *graph.Node {
	d := c.Shape().Dimensions
	return o.svdFor(d[2], d[3]).v.real(c)
}

// Ut implements Singular.
func (o separableSVD) Ut(y *graph.Node) *graph.Node {
	d := y.Shape().Dimensions
	return o.svdFor(d[2]*o.factor, d[3]*o.factor).ut.real(y)
}

// U implements Singular.
func (o separableSVD) U(c *graph.Node) *graph.Node {
	d := c.Shape().Dimensions
	return o.svdFor(d[2]*o.factor, d[3]*o.factor).u.real(c)
}

// Singulars implements Singular: σ_R[i]·σ_C[j], [1, C, H/factor, W/factor].
func (o separableSVD) Singulars(g *graph.Graph, x shapes.Shape) *graph.Node {
	if _, err := o.self.MeasurementShape(x); err != nil {
		panic(err)
	}
	return o.svdFor(x.Dimensions[2], x.Dimensions[3]).singulars(g, x)
}

// PseudoInverse implements PseudoInverter through the SVD.
func (o separableSVD) PseudoInverse(y *graph.Node) *graph.Node {
	d := y.Shape().Dimensions
	return PseudoInverseSVD(o.self, y, shapes.Make(y.DType(), d[0], d[1], d[2]*o.factor, d[3]*o.factor))
}

// ProxData implements DataProxer through the SVD.
func (o separableSVD) ProxData(v, y, rho *graph.Node) *graph.Node {
	return ProxDataSVD(o.self, v, y, rho)
}

// Super-resolution.

func (s *SuperResolution) svd(hh, ww int) sepSVD {
	return s.svds.get(hh, ww, func() sepSVD {
		return newSepSVD(cmat{rows: hh / s.factor, cols: hh, re: s.axis(hh, s.factor)},
			cmat{rows: ww / s.factor, cols: ww, re: s.axis(ww, s.factor)})
	})
}

// Inpainting: U = V = I, s = the mask.

// Vt implements Singular: the identity.
func (m *Inpainting) Vt(x *graph.Node) *graph.Node { mustShape(m, x); return x }

// V implements Singular: the identity.
func (m *Inpainting) V(c *graph.Node) *graph.Node { return c }

// Ut implements Singular: the identity.
func (m *Inpainting) Ut(y *graph.Node) *graph.Node { return y }

// U implements Singular: the identity.
func (m *Inpainting) U(c *graph.Node) *graph.Node { return c }

// Singulars implements Singular: the mask, [1, C, H, W].
func (m *Inpainting) Singulars(g *graph.Graph, x shapes.Shape) *graph.Node {
	if _, err := m.MeasurementShape(x); err != nil {
		panic(err)
	}
	return graph.BroadcastToDims(constant(g, x.DType, m.mask, 1, 1, m.h, m.w), 1, x.Dimensions[1], m.h, m.w)
}

// PseudoInverse implements PseudoInverter: m ⊙ y.
func (m *Inpainting) PseudoInverse(y *graph.Node) *graph.Node {
	return PseudoInverseSVD(m, y, y.Shape())
}

// ProxData implements DataProxer: (m ⊙ y + ρ v) / (m + ρ).
func (m *Inpainting) ProxData(v, y, rho *graph.Node) *graph.Node { return ProxDataSVD(m, v, y, rho) }

// Identity: U = V = I, s = 1.

// Vt implements Singular.
func (Identity) Vt(x *graph.Node) *graph.Node { return x }

// V implements Singular.
func (Identity) V(c *graph.Node) *graph.Node { return c }

// Ut implements Singular.
func (Identity) Ut(y *graph.Node) *graph.Node { return y }

// U implements Singular.
func (Identity) U(c *graph.Node) *graph.Node { return c }

// Singulars implements Singular: ones, [1, C, H, W].
func (Identity) Singulars(g *graph.Graph, x shapes.Shape) *graph.Node {
	d := x.Dimensions
	return graph.Ones(g, shapes.Make(x.DType, 1, d[1], d[2], d[3]))
}

// PseudoInverse implements PseudoInverter: y.
func (Identity) PseudoInverse(y *graph.Node) *graph.Node { return y }

// ProxData implements DataProxer: (y + ρ v) / (1 + ρ).
func (i Identity) ProxData(v, y, rho *graph.Node) *graph.Node { return ProxDataSVD(i, v, y, rho) }

// SeparableBlur is a Blur whose kernel has rank 1, kernel[a, b] = p[a]·q[b] (the Gaussian
// blur): it has an SVD (the blur is B_H x B_Wᵀ with banded matrices that fold in the
// reflect padding), hence a pseudo-inverse and a data proximal map. Apply and Adjoint are
// the Blur's. A blur whose kernel has a higher rank (motion blur) is a plain *Blur, which
// offers only its adjoint.
type SeparableBlur struct {
	*Blur
	separableSVD
	p, q []float64 // kernel = p ⊗ q
	svds perSize[sepSVD]
}

// separableRank1Tol bounds σ₂/σ₁ of a kernel that Separable treats as rank 1.
const separableRank1Tol = 1e-12

// Separable returns b with its SVD when b's kernel has rank 1 (σ₂ ≤ 1e-12·σ₁), and an
// error naming b otherwise.
func (b *Blur) Separable() (*SeparableBlur, error) {
	if b.sep != nil {
		return newSeparableBlur(b, b.sep, b.sep), nil
	}
	u, v, s := hostSVD(cmat{rows: b.k, cols: b.k, re: b.kernel})
	if len(s) > 1 && s[1] > separableRank1Tol*s[0] {
		return nil, fmt.Errorf("%s: the %d×%d kernel is not separable (rank > 1: σ₂/σ₁ = %.3g), so the blur has no SVD", b.name, b.k, b.k, s[1]/s[0])
	}
	p, q := make([]float64, b.k), make([]float64, b.k)
	for i := range b.k {
		p[i] = s[0] * u.re[i*b.k]
		q[i] = v.re[i*b.k]
	}
	return newSeparableBlur(b, p, q), nil
}

func newSeparableBlur(b *Blur, p, q []float64) *SeparableBlur {
	sb := &SeparableBlur{Blur: b, p: p, q: q}
	sb.separableSVD = separableSVD{self: sb, factor: 1, svdFor: sb.svd}
	return sb
}

func (b *SeparableBlur) svd(hh, ww int) sepSVD {
	return b.svds.get(hh, ww, func() sepSVD { return newSepSVD(bandMatrix(hh, b.p), bandMatrix(ww, b.q)) })
}
