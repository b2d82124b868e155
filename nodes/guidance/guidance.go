// Package guidance implements the conditioning methods that steer a diffusion sampler
// towards a measurement y = A(x) + n:
//
//	vanilla     no conditioning (unconditional samples)
//	projection  replace the measured part of x by a noised y (Score-SDE / ILVR style)
//	mcg         a DPS gradient step, then the projection (manifold-constrained gradient)
//	ps          Diffusion Posterior Sampling: x_{t−1} = x' − ζ ∇_{x_t} ‖y − A(x̂0(x_t))‖
//	ps+         ps with the norm averaged over jittered x̂0
//
// The DPS step size follows one of two named rules (they are equal up to a factor 2):
// RuleReference, the reference code's constant scale on the unsquared norm, and
// RulePaper, Algorithm 1's ζ′/‖y − A(x̂0)‖ on the squared norm. Norms are per sample by
// default, so results do not change with the batch size; BatchNorm reproduces the
// reference's single norm over the whole batch.
//
// Guidance is an interface, as operators are: Config is the paper's methods, and a Go value
// or a notebook cell can define another (FromFunc), which the sampler compiles into its
// step like the built-in ones.
package guidance

import (
	"fmt"
	"math"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/operator"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
)

// Method names a conditioning method.
type Method string

// The conditioning methods.
const (
	Vanilla    Method = "vanilla"
	Projection Method = "projection"
	MCG        Method = "mcg"
	PS         Method = "ps"
	PSPlus     Method = "ps+"
)

// Methods lists every method, in the order above.
var Methods = []Method{Vanilla, Projection, MCG, PS, PSPlus}

// Rule names how the DPS step size is set.
type Rule string

const (
	// RuleReference: x_{t−1} = x' − Scale·∇‖y − A(x̂0)‖ (the reference code).
	RuleReference Rule = "reference"
	// RulePaper: x_{t−1} = x' − (ζ′/‖y − A(x̂0)‖)·∇‖y − A(x̂0)‖², ζ′ = Scale (Algorithm 1).
	RulePaper Rule = "paper"
)

// Config chooses and parameterises a conditioning method.
type Config struct {
	Method Method
	// Scale is the reference scale (RuleReference) or ζ′ (RulePaper); ignored by vanilla
	// and projection.
	Scale float64
	// Rule defaults to RuleReference.
	Rule Rule
	// BatchNorm takes one norm over the whole batch, as the reference code does (its
	// results then depend on the batch size). Default: one norm per sample.
	BatchNorm bool
	// PlusSamples and PlusJitter are ps+'s number of jittered x̂0 and the amplitude of the
	// uniform [0, 1) jitter added to them (the reference: 5 and 0.05).
	PlusSamples int
	PlusJitter  float64
}

// Name is the method's name.
func (c Config) Name() string { return string(c.Method) }

// Prepare is Validate as the Guidance interface asks for it.
func (c Config) Prepare(op operator.Operator) (Guidance, error) { return c.Validate(op) }

// Validate checks c against the operator and fills defaults. Errors name the parameter, or
// the operator and the capability it lacks. "dps" and "dps+" are accepted for ps and ps+.
func (c Config) Validate(op operator.Operator) (Config, error) {
	switch c.Method {
	case "dps":
		c.Method = PS
	case "dps+":
		c.Method = PSPlus
	}
	switch c.Method {
	case Vanilla, Projection, MCG, PS, PSPlus:
	default:
		names := make([]string, len(Methods))
		for i, m := range Methods {
			names[i] = string(m)
		}
		return c, fmt.Errorf("guidance: unknown method %q; valid methods: %s", c.Method, strings.Join(names, ", "))
	}
	if c.Rule == "" {
		c.Rule = RuleReference
	}
	if c.Rule != RuleReference && c.Rule != RulePaper {
		return c, fmt.Errorf("guidance: unknown rule %q; valid rules: %s, %s", c.Rule, RuleReference, RulePaper)
	}
	if c.UsesGradient() && (!(c.Scale > 0) || math.IsInf(c.Scale, 0)) {
		return c, fmt.Errorf("guidance: %s needs a positive finite scale, got %v", c.Method, c.Scale)
	}
	if c.Method == PSPlus {
		if c.PlusSamples == 0 {
			c.PlusSamples = 5
		}
		if c.PlusJitter == 0 {
			c.PlusJitter = 0.05
		}
		if c.PlusSamples < 1 || c.PlusJitter < 0 {
			return c, fmt.Errorf("guidance: ps+ needs plus_samples ≥ 1 and plus_jitter ≥ 0, got %d and %v", c.PlusSamples, c.PlusJitter)
		}
	}
	if c.UsesProjection() {
		if err := operator.Require(op, "guidance "+string(c.Method), operator.CapProjection); err != nil {
			return c, fmt.Errorf("%w; use ps or ps+", err)
		}
	}
	return c, nil
}

// UsesGradient says whether the method differentiates through the prior.
func (c Config) UsesGradient() bool { return c.Method == PS || c.Method == PSPlus || c.Method == MCG }

// UsesProjection says whether the method projects onto the noised measurement.
func (c Config) UsesProjection() bool { return c.Method == Projection || c.Method == MCG }

// Apply returns x_{t−1} and the per-sample distance ‖y − A(x̂0)‖ (shape [B]). c must have
// passed Validate for s.Op.
func (c Config) Apply(s Step) (next, dist *Node) {
	op, nm := s.Op, s.Noise
	dist = nm.Distance(s.Y, op.Apply(s.X0Hat))
	if !c.UsesGradient() {
		next = s.XPrev
		if c.Method == Projection {
			next = op.(operator.Projector).Project(next, s.NoisyY())
		}
		return next, StopGradient(dist)
	}
	d := dist
	if c.Method == PSPlus {
		// The reference averages the norm over x̂0 + jitter·U[0,1).
		d = nil
		for range c.PlusSamples {
			u := s.Uniform(s.X0Hat.Shape())
			dj := nm.Distance(s.Y, op.Apply(Add(s.X0Hat, MulScalar(u, c.PlusJitter))))
			if d == nil {
				d = dj
			} else {
				d = Add(d, dj)
			}
		}
		d = DivScalar(d, float64(c.PlusSamples))
	}
	var update *Node
	switch c.Rule {
	case RulePaper:
		grad := Gradient(ReduceAllSum(Square(d)), s.Xt)[0]
		norm := d
		if c.BatchNorm {
			norm = BroadcastToShape(Sqrt(ReduceAllSum(Square(d))), d.Shape())
		}
		// ζ′/‖r‖ per sample; a zero residual needs no step.
		zeta := Div(Scalar(d.Graph(), d.DType(), c.Scale), MaxScalar(norm, 1e-12))
		update = Mul(grad, PerSample(zeta, grad.Rank()))
	default:
		obj := ReduceAllSum(d) // Σ_b ‖r_b‖: the gradient of each sample's own norm
		if c.BatchNorm {
			obj = Sqrt(ReduceAllSum(Square(d)))
		}
		update = MulScalar(Gradient(obj, s.Xt)[0], c.Scale)
	}
	next = Sub(s.XPrev, update)
	if c.Method == MCG {
		next = op.(operator.Projector).Project(next, s.NoisyY())
	}
	return next, StopGradient(dist)
}

// PerSample reshapes a [B] vector to [B, 1, …, 1] of the given rank, for broadcasting a
// per-sample step size over a batch.
func PerSample(v *Node, rank int) *Node {
	dims := make([]int, rank)
	for i := range dims {
		dims[i] = 1
	}
	dims[0] = v.Shape().Dimensions[0]
	return Reshape(v, dims...)
}
