package guidance

import (
	"errors"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Guidance is how a diffusion step uses the likelihood: given the step's graph values it
// returns x_{t−1} and the per-sample distance ‖y − A(x̂0)‖ it reports. Config (the methods of
// the paper) is one; FromFunc makes one from a function (a notebook cell, a one-off).
type Guidance interface {
	// Name is shown in errors, metrics and traces.
	Name() string
	// Prepare checks the guidance against the operator — naming the capability it lacks —
	// and returns it with defaults filled in.
	Prepare(op operator.Operator) (Guidance, error)
	// Apply builds x_{t−1} and the per-sample distance (shape [B]) for one step.
	Apply(s Step) (next, dist *Node)
}

// Step holds the graph values a guidance needs at one sampler step.
type Step struct {
	Xt    *Node // x_t: what the gradient is taken with respect to
	X0Hat *Node // the Tweedie estimate, built from Xt in the same graph
	XPrev *Node // the unconditional update x' (ancestral or DDIM)
	Y     *Node // the measurement
	Op    operator.Operator
	Noise noise.Model
	// NoisyY is y noised to the step's level, √ᾱ_t y + √(1−ᾱ_t) n (the projection methods);
	// n is drawn from the step's random state at the first call.
	NoisyY func() *Node
	// Uniform and Normal draw from the step's random state (the sampler's seeded RNG, so a
	// run stays reproducible and resumable). Each call is a new draw.
	Uniform func(shapes.Shape) *Node
	Normal  func(shapes.Shape) *Node
}

// Func describes a guidance by a function, in the style of operator.Func: for guidance
// written in a notebook cell or as a closure.
type Func struct {
	Name string // shown in errors and metrics (required)
	// Needs are operator capabilities Apply uses (e.g. operator.CapProjection); Prepare
	// refuses an operator without them.
	Needs []operator.Capability
	// Apply returns x_{t−1} and the per-sample distance, e.g. x' − ζ∇_{x_t}‖y − A(x̂0)‖₁.
	Apply func(s Step) (next, dist *Node)
}

// FromFunc returns the Guidance that f describes.
func FromFunc(f Func) (Guidance, error) {
	if f.Name == "" {
		return nil, errors.New("guidance.FromFunc: Name is empty; name the guidance (it appears in errors and metrics)")
	}
	if f.Apply == nil {
		return nil, errors.New("guidance.FromFunc " + f.Name + ": Apply is nil")
	}
	return funcGuidance{f}, nil
}

type funcGuidance struct{ f Func }

func (g funcGuidance) Name() string { return g.f.Name }

func (g funcGuidance) Prepare(op operator.Operator) (Guidance, error) {
	if err := operator.Require(op, "guidance "+g.f.Name, g.f.Needs...); err != nil {
		return nil, err
	}
	return g, nil
}

func (g funcGuidance) Apply(s Step) (next, dist *Node) { return g.f.Apply(s) }
