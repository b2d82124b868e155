package operator

import (
	"errors"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Func describes an operator by plain graph functions, for operators written where
// declaring a type with methods does not serve: a notebook cell, whose interpreter hands
// an interpreted type to compiled code as a bare Operator (a type assertion to Linear or
// Projector there fails), or a one-off closure. FromFunc turns it into an Operator.
type Func struct {
	Name  string                          // the operator's name, shown in errors (required)
	Apply func(x *graph.Node) *graph.Node // A(x) on [B, C, H, W] (required)
	// Shape is A's output shape for an input shape; nil: the measurement has x's shape.
	Shape func(x shapes.Shape) (shapes.Shape, error)
	// Adjoint, when set, makes the operator Linear; it must satisfy ⟨A x, y⟩ = ⟨x, Aᵀ y⟩.
	Adjoint func(y *graph.Node) *graph.Node
	// Project, when set, makes the operator a Projector (for the projection and mcg
	// guidance methods): A(Project(x, y)) = y, leaving the unmeasured part of x alone.
	Project func(x, y *graph.Node) *graph.Node
}

// FromFunc returns the Operator that f describes. It implements Linear when f.Adjoint is
// set and Projector when f.Project is set, and nothing more, so guidance methods that
// need a projection refuse it when it has none.
func FromFunc(f Func) (Operator, error) {
	if f.Name == "" {
		return nil, errors.New("operator.FromFunc: Name is empty; name the operator (it appears in errors)")
	}
	if f.Apply == nil {
		return nil, errors.New("operator.FromFunc " + f.Name + ": Apply is nil; give A(x) as a graph function")
	}
	base := funcOp{f}
	switch {
	case f.Adjoint != nil && f.Project != nil:
		return funcLinearProjector{base}, nil
	case f.Adjoint != nil:
		return funcLinear{base}, nil
	case f.Project != nil:
		return funcProjector{base}, nil
	}
	return base, nil
}

type funcOp struct{ f Func }

func (o funcOp) Name() string { return o.f.Name }

func (o funcOp) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if o.f.Shape == nil {
		return x, nil
	}
	return o.f.Shape(x)
}

func (o funcOp) Apply(x *graph.Node) *graph.Node { return o.f.Apply(x) }

type funcLinear struct{ funcOp }

func (o funcLinear) Adjoint(y *graph.Node) *graph.Node { return o.f.Adjoint(y) }

type funcProjector struct{ funcOp }

func (o funcProjector) Project(x, y *graph.Node) *graph.Node { return o.f.Project(x, y) }

type funcLinearProjector struct{ funcOp }

func (o funcLinearProjector) Adjoint(y *graph.Node) *graph.Node    { return o.f.Adjoint(y) }
func (o funcLinearProjector) Project(x, y *graph.Node) *graph.Node { return o.f.Project(x, y) }
