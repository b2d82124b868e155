// Package operator provides the measurement operators of the DPS paper as graph functions
// on NCHW image batches in [-1, 1] (float32 or float64, following the input), with the
// capabilities solvers ask for (Capabilities, Require; capabilities.go):
//
//	task              constructors                                      capabilities
//	inpainting        NewBoxInpainting, BoxInpaintingFor,               adjoint, projection,
//	                  NewRandomInpaintingFixed (paper: 92 % dropped),   pseudo-inverse, svd
//	                  NewRandomInpaintingRange (reference: [0.3, 0.7]), (U = V = I, s = mask),
//	                  NewMaskInpainting                                 data-prox
//	super_resolution  NewBicubicSR (MATLAB imresize, antialiased)       adjoint, projection,
//	avgpool_sr        NewAvgPoolSR (mean of s×s blocks)                 pseudo-inverse, svd,
//	                                                                    data-prox
//	gaussian_blur     NewGaussianBlur (61×61, σ 3, reflect padding 30)  adjoint, pseudo-inverse,
//	                                                                    svd, data-prox
//	motion_blur       NewMotionBlur (61×61 trajectory, intensity 0.5)   adjoint
//	(any blur)        NewBlur (an odd k×k kernel summing to 1)          adjoint; Separable adds
//	                                                                    svd etc. for rank 1
//	phase_retrieval   NewPhaseRetrieval (|centred orthonormal DFT| of   magnitude-projection
//	                  the zero-padded image)
//	nonlinear_blur    NewNonlinearBlur (a small seeded network, latent  none
//	                  code drawn once), NewNonlinearBlurSeeds
//	identity          NewIdentity                                       all but
//	                                                                    magnitude-projection
//
// The capabilities are interfaces: adjoint (Linear), projection (Projector), pseudo-inverse
// (PseudoInverter), svd (Singular), data-prox (DataProxer; ProxDataSVD, or ProxDataCG for a
// Linear operator without SVD), magnitude-projection (MagnitudeProjector). Operators built
// by FromFunc and PerImage declare theirs (Declared), so solvers check with Require or Has
// before they type-assert.
//
// New builds any of them by the task names and parameters of the reference's YAML configs.
//
// Everything random (box position, random mask, motion kernel, network weights and latent
// code) is drawn on the host from a seed (math/rand/v2 PCG) when the operator is built, so
// an operator is deterministic. NewBatch gives every image of a run its own draws, from
// ImageSeed(seed, index), stacked by PerImage; Masks returns their masks.
//
// Operators are built from small host matrices (resizing, banded blur matrices with the
// padding folded in, real DFT matrices) applied as matrix products: that is fast on the
// embedded backend, differentiable there (no FFT, Pad or Reverse needed) and gives exact
// adjoints.
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
