package operator

// Capabilities: what an operator offers beyond A(x), for solvers that ask for a capability
// and never for an operator type. Each capability is an interface (Linear, Projector,
// PseudoInverter, Singular, DataProxer, MagnitudeProjector); Capabilities lists those an
// operator has and Require refuses, before any work, an operator that lacks one.
//
// Operators whose capabilities depend on how they were built (FromFunc, PerImage) declare
// them with Declared, and Capabilities believes the declaration over the method set: such
// a type has every method, but only the declared ones may be called. So a solver calls
// Require (or Has) first and type-asserts afterwards.

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Capability names one thing an operator can do beyond A(x).
type Capability string

// The capabilities, each with the interface that provides it.
const (
	CapAdjoint             Capability = "adjoint"              // Linear
	CapProjection          Capability = "projection"           // Projector
	CapPseudoInverse       Capability = "pseudo-inverse"       // PseudoInverter
	CapSVD                 Capability = "svd"                  // Singular
	CapDataProx            Capability = "data-prox"            // DataProxer
	CapMagnitudeProjection Capability = "magnitude-projection" // MagnitudeProjector
)

// AllCapabilities lists every capability, in the order Capabilities reports them.
var AllCapabilities = []Capability{CapAdjoint, CapProjection, CapPseudoInverse, CapSVD, CapDataProx, CapMagnitudeProjection}

// PseudoInverter operators give the Moore–Penrose pseudo-inverse: PseudoInverse(y) = A⁺y, the
// least-squares solution of A x = y of least norm, shaped like x.
type PseudoInverter interface {
	Operator
	PseudoInverse(y *graph.Node) *graph.Node
}

// Singular operators give their singular value decomposition A = U Σ Vᵀ, per sample, with
// U and V orthonormal.
//
// x-coefficients have x's per-sample shape [C, H, W] and y-coefficients y's per-sample shape
// [C, h, w]. Σ maps the x-coefficient at (c, i, j) with i < h and j < w (the leading block)
// to the y-coefficient at (c, i, j) times s[c, i, j]; the other x-coefficients span the
// null space. So A x = U(s ⊙ Vt(x)[:, :, :h, :w]).
type Singular interface {
	Operator
	// Vt maps x [B, C, H, W] to its coefficients Vᵀx [B, C, H, W].
	Vt(x *graph.Node) *graph.Node
	// V maps x-coefficients [B, C, H, W] back to an image: V c.
	V(c *graph.Node) *graph.Node
	// Ut maps a measurement y [B, C, h, w] to its coefficients Uᵀy [B, C, h, w].
	Ut(y *graph.Node) *graph.Node
	// U maps y-coefficients [B, C, h, w] back to a measurement: U c.
	U(c *graph.Node) *graph.Node
	// Singulars returns s, shaped [1 or B, C, h, w] (broadcastable over the batch) in x's
	// dtype, for inputs of shape x. Zero singular values are allowed (e.g. the unobserved
	// pixels of inpainting).
	Singulars(g *graph.Graph, x shapes.Shape) *graph.Node
}

// DataProxer operators give the proximal map of the data term:
//
//	ProxData(v, y, ρ) = argmin_x ½‖A x − y‖² + (ρ/2)‖x − v‖²
//
// the solution of (AᵀA + ρI) x = Aᵀy + ρv, per sample. rho is a scalar node or one value
// per sample, [B, 1, 1, 1].
type DataProxer interface {
	Operator
	ProxData(v, y, rho *graph.Node) *graph.Node
}

// MagnitudeProjector operators measure Fourier magnitudes, y = |F pad(x)|, and project onto
// them in the padded domain (for the ER, HIO and OSS phase retrieval solvers). F is the
// centred orthonormal 2-D DFT on the padded grid [P_H, P_W] = [H + 2·pad_H, W + 2·pad_W].
type MagnitudeProjector interface {
	Operator
	// ZeroPad embeds x [B, C, H, W] in the padded grid [B, C, P_H, P_W] with the zero
	// padding the operator measures through (x at rows pad_H…, columns pad_W…).
	ZeroPad(x *graph.Node) *graph.Node
	// Crop is ZeroPad's left inverse: the [B, C, H, W] window where x sits.
	Crop(z *graph.Node) *graph.Node
	// ProjectMagnitude returns Re F⁻¹(y · F z / |F z|): z's phases kept, its magnitudes
	// replaced by y (phase 0 where F z = 0). z and y are [B, C, P_H, P_W].
	ProjectMagnitude(z, y *graph.Node) *graph.Node
}

// Declared operators say which capabilities they offer; Capabilities believes them over
// their method set. Operators built by FromFunc and PerImage are Declared.
type Declared interface {
	Capabilities() []Capability
}

// Capabilities lists what op offers, in AllCapabilities' order: its declaration when it is
// Declared, otherwise the capability interfaces it implements.
func Capabilities(op Operator) []Capability {
	if d, ok := op.(Declared); ok {
		return d.Capabilities()
	}
	var caps []Capability
	add := func(ok bool, c Capability) {
		if ok {
			caps = append(caps, c)
		}
	}
	_, ok := op.(Linear)
	add(ok, CapAdjoint)
	_, ok = op.(Projector)
	add(ok, CapProjection)
	_, ok = op.(PseudoInverter)
	add(ok, CapPseudoInverse)
	_, ok = op.(Singular)
	add(ok, CapSVD)
	_, ok = op.(DataProxer)
	add(ok, CapDataProx)
	_, ok = op.(MagnitudeProjector)
	add(ok, CapMagnitudeProjection)
	return caps
}

// Has reports whether op offers c.
func Has(op Operator, c Capability) bool {
	for _, have := range Capabilities(op) {
		if have == c {
			return true
		}
	}
	return false
}

// MissingCapabilityError is Require's error: Who needs Missing, which the operator named
// Operator lacks; it has Has.
type MissingCapabilityError struct {
	Who, Operator string
	Missing, Has  []Capability
}

func (e *MissingCapabilityError) Error() string {
	has := "—"
	if len(e.Has) > 0 {
		has = joinCaps(e.Has, ", ")
	}
	return fmt.Sprintf("%s needs the operator's %s, which %s does not offer (it has: %s)",
		e.Who, joinCaps(e.Missing, " and "), e.Operator, has)
}

func joinCaps(caps []Capability, sep string) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = string(c)
	}
	return strings.Join(s, sep)
}

// Require returns nil when op offers every one of caps, and otherwise a
// *MissingCapabilityError naming who (e.g. "solver ddrm"), the operator, what is missing
// and what it offers, e.g.
//
//	solver ddrm needs the operator's svd, which phase_retrieval does not offer (it has: magnitude-projection)
func Require(op Operator, who string, caps ...Capability) error {
	has := Capabilities(op)
	var missing []Capability
	for _, c := range caps {
		found := false
		for _, h := range has {
			found = found || h == c
		}
		if !found {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &MissingCapabilityError{Who: who, Operator: op.Name(), Missing: missing, Has: has}
}

// svdDims returns x's [B, C, H, W] and the measurement's [h, w] for a Singular operator.
func svdDims(op Singular, x shapes.Shape) (d []int, h, w int) {
	y, err := op.MeasurementShape(x)
	if err != nil {
		panic(err)
	}
	return x.Dimensions, y.Dimensions[2], y.Dimensions[3]
}

// leading returns the [:, :, :h, :w] block of c.
func leading(c *graph.Node, h, w int) *graph.Node {
	d := c.Shape().Dimensions
	if d[2] == h && d[3] == w {
		return c
	}
	return graph.Slice(c, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, h), graph.AxisRange(0, w))
}

// embed places z [B, C, h, w] at the top-left of a zero [B, C, H, W].
func embed(z *graph.Node, hh, ww int) *graph.Node {
	d := z.Shape().Dimensions
	if d[2] < hh {
		zeros := graph.Zeros(z.Graph(), shapes.Make(z.DType(), d[0], d[1], hh-d[2], d[3]))
		z = graph.Concatenate([]*graph.Node{z, zeros}, 2)
	}
	if d[3] < ww {
		zeros := graph.Zeros(z.Graph(), shapes.Make(z.DType(), d[0], d[1], hh, ww-d[3]))
		z = graph.Concatenate([]*graph.Node{z, zeros}, 3)
	}
	return z
}

// PseudoInverseSVD is A⁺y = V(Σ⁺ Uᵀy) through op's SVD, for inputs of shape x: 1/s where s
// exceeds max(s)·H·W·ε (ε the dtype's machine epsilon, as MATLAB's pinv), 0 elsewhere. y is
// [B, C, h, w]; the result has shape x.
func PseudoInverseSVD(op Singular, y *graph.Node, x shapes.Shape) *graph.Node {
	eps := 2.220446049250313e-16
	if x.DType == dtypes.Float32 {
		eps = 1.1920929e-07
	}
	return TruncatedPseudoInverse(op, y, x, float64(x.Dimensions[2]*x.Dimensions[3])*eps)
}

// TruncatedPseudoInverse is V(Σ⁺ Uᵀy) with the singular values s ≤ rcond·max(s) treated as
// 0 (numpy.linalg.pinv's rcond): A⁺y without the noise amplification of an ill-conditioned
// operator's tiny singular values (a blur's reach 1e-10 of the largest). y is [B, C, h, w];
// the result has shape x.
func TruncatedPseudoInverse(op Singular, y *graph.Node, x shapes.Shape, rcond float64) *graph.Node {
	d, _, _ := svdDims(op, x)
	s := op.Singulars(y.Graph(), x)
	tol := graph.MulScalar(graph.ReduceAllMax(s), rcond)
	keep := graph.GreaterThan(s, graph.BroadcastToShape(tol, s.Shape()))
	safe := graph.Where(keep, s, graph.OnesLike(s))
	inv := graph.Where(keep, graph.Reciprocal(safe), graph.ZerosLike(s))
	return op.V(embed(graph.Mul(op.Ut(y), inv), d[2], d[3]))
}

// ProxDataSVD is the data term's proximal map through op's SVD: with c = Vt(v), the
// leading block becomes (s·Uᵀy + ρ·c) / (s² + ρ), the null-space coefficients stay, and the
// result is V of the new coefficients. v is [B, C, H, W], y [B, C, h, w], rho a scalar or
// [B, 1, 1, 1].
func ProxDataSVD(op Singular, v, y, rho *graph.Node) *graph.Node {
	_, h, w := svdDims(op, v.Shape())
	d := v.Shape().Dimensions
	s := op.Singulars(v.Graph(), v.Shape())
	c := op.Vt(v)
	lead := leading(c, h, w)
	num := graph.Add(graph.Mul(s, op.Ut(y)), graph.Mul(rho, lead))
	den := graph.Add(graph.Square(s), rho)
	return op.V(graph.Add(c, embed(graph.Sub(graph.Div(num, den), lead), d[2], d[3])))
}

// CheckDataStep refuses, naming what op has, an operator whose data proximal map
// (ProxDataOrCG) cannot be taken: it needs CapDataProx, or CapAdjoint for conjugate gradients.
func CheckDataStep(op Operator) error {
	if Has(op, CapDataProx) || Has(op, CapAdjoint) {
		return nil
	}
	has := "—"
	if caps := Capabilities(op); len(caps) > 0 {
		has = joinCaps(caps, ", ")
	}
	return fmt.Errorf("needs the operator's %s or, for a conjugate-gradient data step, its %s; %s offers neither (it has: %s)",
		CapDataProx, CapAdjoint, op.Name(), has)
}

// ProxDataOrCG is argmin_x ½‖A x − y‖² + (ρ/2)‖x − v‖²: op's ProxData when it has one, else
// cgIters steps of ProxDataCG. Call CheckDataStep first.
func ProxDataOrCG(op Operator, v, y, rho *graph.Node, cgIters int) *graph.Node {
	if Has(op, CapDataProx) {
		return op.(DataProxer).ProxData(v, y, rho)
	}
	return ProxDataCG(op.(Linear), v, y, rho, cgIters)
}

// ProxDataCG solves (AᵀA + ρI) x = Aᵀy + ρv by iters steps of conjugate gradients from
// x = v, per sample, inside the graph: the data term's proximal map for a Linear operator
// without an SVD. rho is a scalar or [B, 1, 1, 1] and must be positive. Steps whose
// residual has vanished leave x unchanged.
func ProxDataCG(op Linear, v, y, rho *graph.Node, iters int) *graph.Node {
	normal := func(x *graph.Node) *graph.Node { return graph.Add(op.Adjoint(op.Apply(x)), graph.Mul(rho, x)) }
	dot := func(a, b *graph.Node) *graph.Node {
		return graph.ReduceAndKeep(graph.Mul(a, b), graph.ReduceSum, 1, 2, 3)
	}
	tiny := graph.Scalar(v.Graph(), v.DType(), 1e-300)
	if v.DType() == dtypes.Float32 {
		tiny = graph.Scalar(v.Graph(), v.DType(), 1e-30)
	}
	x := v
	r := graph.Sub(graph.Add(op.Adjoint(y), graph.Mul(rho, v)), normal(v))
	p := r
	rr := dot(r, r)
	for range iters {
		q := normal(p)
		alpha := graph.Div(rr, graph.Max(dot(p, q), tiny))
		x = graph.Add(x, graph.Mul(alpha, p))
		r = graph.Sub(r, graph.Mul(alpha, q))
		next := dot(r, r)
		p = graph.Add(r, graph.Mul(graph.Div(next, graph.Max(rr, tiny)), p))
		rr = next
	}
	return x
}
