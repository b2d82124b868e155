// Package noise provides measurement noise models. Each samples a noisy measurement from
// A(x) on the host, seeded, and defines the data-fidelity distance that DPS differentiates.
//
// Units: images and measurements live in [-1, 1]. Gaussian σ is in those units: the
// reference's σ = 0.05 is σ = 0.025 in [0, 1] units. Poisson noise follows the reference
// code, which counts photons on the [0, 1] intensity scale times 255·rate; its distance is
// one of the named PoissonForms (paper, reference, plain, model, nll).
//
// Randomness: Measure draws from math/rand/v2's PCG seeded by the seed alone, in row-major
// order, so the same seed gives the same bytes on every run (and, Go's math being portable,
// in practice across machines).
//
// Distances are per sample ([B]) so results do not depend on the batch size (the reference
// takes one norm over the whole batch). They are differentiable in ax everywhere: DPS takes
// the gradient of the unsquared norm, whose derivative r/‖r‖ is 0/0 at r = 0; there the
// gradient is defined as 0 (a subgradient) instead of NaN.
package noise

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Model is a measurement noise model.
type Model interface {
	// Name is "gaussian" or "poisson".
	Name() string
	// Measure returns a noisy measurement y from the clean one ax = A(x), drawn from seed:
	// the same seed gives the same bytes.
	Measure(ax *tensors.Tensor, seed uint64) (*tensors.Tensor, error)
	// Distance builds the per-sample data-fidelity norm between y and ax (both [B, ...]),
	// shape [B]: ‖y − A(x̂0)‖ for Gaussian noise, the chosen PoissonForm for Poisson noise.
	Distance(y, ax *graph.Node) *graph.Node
}
