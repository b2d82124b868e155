package operator

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Identity is A(x) = x: the measurement of a denoising problem, and the placeholder
// operator of unconditional (vanilla) sampling.
type Identity struct{}

// NewIdentity returns the identity operator.
func NewIdentity() Identity { return Identity{} }

// Name implements Operator.
func (Identity) Name() string { return "identity" }

// MeasurementShape implements Operator.
func (Identity) MeasurementShape(x shapes.Shape) (shapes.Shape, error) { return x, nil }

// Apply implements Operator.
func (Identity) Apply(x *graph.Node) *graph.Node { return x }

// Adjoint implements Linear.
func (Identity) Adjoint(y *graph.Node) *graph.Node { return y }

// Project implements Projector: the measured part is everything.
func (Identity) Project(_, y *graph.Node) *graph.Node { return y }
