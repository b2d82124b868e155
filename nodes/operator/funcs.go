package operator

import (
	"errors"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Func describes an operator by plain graph functions, for operators written where
// declaring a type with methods does not serve: a notebook cell, whose interpreter hands
// an interpreted type to compiled code as a bare Operator (a type assertion to Linear or
// Projector there fails), or a one-off closure. FromFunc turns it into an Operator that
// declares (Declared) exactly the capabilities whose functions are set.
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
	// PseudoInverse, when set, declares CapPseudoInverse: A⁺y (Moore–Penrose).
	PseudoInverse func(y *graph.Node) *graph.Node
	// ProxData, when set, declares CapDataProx: argmin_x ½‖A x − y‖² + (ρ/2)‖x − v‖².
	// When it is nil and SVD is set, the data proximal map comes from the SVD (ProxDataSVD).
	ProxData func(v, y, rho *graph.Node) *graph.Node
	// SVD, when set, declares CapSVD (see Singular for the conventions).
	SVD *SVDFuncs
}

// SVDFuncs are the functions of Singular, for a Func; all are required.
type SVDFuncs struct {
	Vt, V, Ut, U func(*graph.Node) *graph.Node
	Singulars    func(g *graph.Graph, x shapes.Shape) *graph.Node
}

// FromFunc returns the Operator that f describes. It is Linear exactly when f.Adjoint is
// set and a Projector exactly when f.Project is set, so type assertions to those two keep
// working; for every capability, Capabilities, Has and Require report what f declares. The
// methods of the other capability interfaces exist on the result whether declared or not:
// calling an undeclared one panics with a *MissingCapabilityError, so check Require first.
func FromFunc(f Func) (Operator, error) {
	if f.Name == "" {
		return nil, errors.New("operator.FromFunc: Name is empty; name the operator (it appears in errors)")
	}
	if f.Apply == nil {
		return nil, errors.New("operator.FromFunc " + f.Name + ": Apply is nil; give A(x) as a graph function")
	}
	if s := f.SVD; s != nil && (s.Vt == nil || s.V == nil || s.Ut == nil || s.U == nil || s.Singulars == nil) {
		return nil, errors.New("operator.FromFunc " + f.Name + ": SVD needs all of Vt, V, Ut, U and Singulars")
	}
	return wrapFunc(funcOp{f: f}), nil
}

// wrapFunc gives base the Linear and Projector method sets its functions allow.
func wrapFunc(base funcOp) Operator {
	switch f := base.f; {
	case f.Adjoint != nil && f.Project != nil:
		return funcLinearProjector{base}
	case f.Adjoint != nil:
		return funcLinear{base}
	case f.Project != nil:
		return funcProjector{base}
	}
	return base
}

// funcOp implements every method; Capabilities says which ones may be called.
type funcOp struct {
	f     Func
	parts []Operator // PerImage's per-sample operators; nil for FromFunc
}

func (o funcOp) Name() string { return o.f.Name }

func (o funcOp) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if o.f.Shape == nil {
		return x, nil
	}
	return o.f.Shape(x)
}

func (o funcOp) Apply(x *graph.Node) *graph.Node { return o.f.Apply(x) }

// Capabilities implements Declared.
func (o funcOp) Capabilities() []Capability {
	var caps []Capability
	for c, set := range map[Capability]bool{
		CapAdjoint:       o.f.Adjoint != nil,
		CapProjection:    o.f.Project != nil,
		CapPseudoInverse: o.f.PseudoInverse != nil,
		CapSVD:           o.f.SVD != nil,
		CapDataProx:      o.f.ProxData != nil || o.f.SVD != nil,
	} {
		if set {
			caps = append(caps, c)
		}
	}
	return inOrder(caps)
}

// inOrder sorts capabilities as AllCapabilities lists them.
func inOrder(caps []Capability) []Capability {
	var out []Capability
	for _, c := range AllCapabilities {
		for _, have := range caps {
			if have == c {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func (o funcOp) missing(method string, c Capability) error {
	return &MissingCapabilityError{Who: "a call to " + method, Operator: o.f.Name, Missing: []Capability{c}, Has: o.Capabilities()}
}

func (o funcOp) PseudoInverse(y *graph.Node) *graph.Node {
	if o.f.PseudoInverse == nil {
		panic(o.missing("PseudoInverse", CapPseudoInverse))
	}
	return o.f.PseudoInverse(y)
}

func (o funcOp) ProxData(v, y, rho *graph.Node) *graph.Node {
	switch {
	case o.f.ProxData != nil:
		return o.f.ProxData(v, y, rho)
	case o.f.SVD != nil:
		return ProxDataSVD(o, v, y, rho)
	}
	panic(o.missing("ProxData", CapDataProx))
}

func (o funcOp) svd(method string) *SVDFuncs {
	if o.f.SVD == nil {
		panic(o.missing(method, CapSVD))
	}
	return o.f.SVD
}

func (o funcOp) Vt(x *graph.Node) *graph.Node { return o.svd("Vt").Vt(x) }
func (o funcOp) V(c *graph.Node) *graph.Node  { return o.svd("V").V(c) }
func (o funcOp) Ut(y *graph.Node) *graph.Node { return o.svd("Ut").Ut(y) }
func (o funcOp) U(c *graph.Node) *graph.Node  { return o.svd("U").U(c) }
func (o funcOp) Singulars(g *graph.Graph, x shapes.Shape) *graph.Node {
	return o.svd("Singulars").Singulars(g, x)
}

type funcLinear struct{ funcOp }

func (o funcLinear) Adjoint(y *graph.Node) *graph.Node { return o.f.Adjoint(y) }

type funcProjector struct{ funcOp }

func (o funcProjector) Project(x, y *graph.Node) *graph.Node { return o.f.Project(x, y) }

type funcLinearProjector struct{ funcOp }

func (o funcLinearProjector) Adjoint(y *graph.Node) *graph.Node    { return o.f.Adjoint(y) }
func (o funcLinearProjector) Project(x, y *graph.Node) *graph.Node { return o.f.Project(x, y) }
