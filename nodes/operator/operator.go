// Package operator provides the measurement operators of the DPS paper as graph functions
// on NCHW image batches in [-1, 1] (float32 or float64, following the input):
//
//	task              constructors                                      interfaces
//	inpainting        NewBoxInpainting, BoxInpaintingFor,               Linear, Projector
//	                  NewRandomInpaintingFixed (paper: 92 % dropped),
//	                  NewRandomInpaintingRange (reference: [0.3, 0.7]),
//	                  NewMaskInpainting
//	super_resolution  NewBicubicSR (MATLAB imresize, antialiased)       Linear, Projector
//	avgpool_sr        NewAvgPoolSR (mean of s×s blocks)                 Linear, Projector
//	gaussian_blur     NewGaussianBlur (61×61, σ 3, reflect padding 30)  Linear
//	motion_blur       NewMotionBlur (61×61 trajectory, intensity 0.5)   Linear
//	(any blur)        NewBlur (an odd k×k kernel summing to 1)          Linear
//	phase_retrieval   NewPhaseRetrieval (|centred orthonormal DFT| of the zero-padded image)
//	nonlinear_blur    NewNonlinearBlur (a small seeded network, latent code drawn once)
//
// New builds any of them by the task names and parameters of the reference's YAML configs.
//
// Everything random (box position, random mask, motion kernel, network weights and latent
// code) is drawn on the host from a seed (math/rand/v2 PCG) when the operator is built, so
// an operator is deterministic. Operators are built from small host matrices (resizing,
// banded blur matrices with the padding folded in, real DFT matrices) applied as matrix
// products: that is fast on the embedded backend, differentiable there (no FFT, Pad or
// Reverse needed) and gives exact adjoints.
package operator

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Operator is a measurement operator y = A(x) on image batches x [B, C, H, W].
type Operator interface {
	// Name is the task name used in configs and errors, e.g. "gaussian_blur".
	Name() string
	// MeasurementShape returns A's output shape for an input shape, or an error that names
	// the operator and the dimension that does not fit.
	MeasurementShape(x shapes.Shape) (shapes.Shape, error)
	// Apply builds A(x). x's shape must have passed MeasurementShape.
	Apply(x *graph.Node) *graph.Node
}

// Linear operators also give their adjoint: ⟨A x, y⟩ = ⟨x, Aᵀ y⟩.
type Linear interface {
	Operator
	Adjoint(y *graph.Node) *graph.Node
}

// Projector operators can replace the measured part of x by y, as the projection and MCG
// conditioning methods need: Project(x, y) has A(Project(x, y)) = y and leaves the
// unmeasured part of x alone.
type Projector interface {
	Operator
	Project(x, y *graph.Node) *graph.Node
}
