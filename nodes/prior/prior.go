// Package prior defines the score-model interface of DPS and provides an analytic
// Gaussian-mixture prior with exact ε, score and Tweedie estimate.
//
// The mixture stands in for a trained network wherever the right answer must be known:
// its noised marginals p_t stay Gaussian mixtures, so ε̂, E[x_0 | x_t] and (for one
// component and a linear Gaussian measurement) the exact posterior are closed forms.
package prior

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Prior predicts the noise ε in x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε.
type Prior interface {
	// Predict returns ε̂(x_t, t) for x_t [B, ...] and t [B] (int32, the diffusion step
	// index 0…T−1 of the base schedule). v is the learned-range variance output (same shape
	// as eps) or nil for fixed-variance models.
	Predict(xt, t *graph.Node) (eps, v *graph.Node)
}

// WithContext is implemented by priors whose weights are variables of a GoMLX context
// (trained networks). Samplers compile their step with that context, so the weights are
// graph inputs rather than constants baked into the compiled program.
type WithContext interface {
	Context() *context.Context
}
