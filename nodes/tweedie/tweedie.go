// Package tweedie gives the Tweedie (posterior-mean) estimate of the clean image from a
// noisy one and the predicted noise, x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t, and its inverse.
package tweedie

import . "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck

// Estimate returns x̂0 from x_t, ε̂ and ᾱ_t (a scalar node). With clip, x̂0 is clipped to
// [-1, 1] as the reference does, which zeroes the gradient of clipped pixels.
func Estimate(xt, eps, alphaBar *Node, clip bool) *Node {
	x0 := Div(Sub(xt, Mul(Sqrt(OneMinus(alphaBar)), eps)), Sqrt(alphaBar))
	if clip {
		x0 = ClipScalar(x0, -1, 1)
	}
	return x0
}

// Eps returns the noise that maps x0 to x_t at ᾱ_t: (x_t − √ᾱ_t x0) / √(1−ᾱ_t). DDIM uses
// it to re-derive ε̂ from a clipped x̂0, so that the update stays consistent with it.
func Eps(xt, x0, alphaBar *Node) *Node {
	return Div(Sub(xt, Mul(Sqrt(alphaBar), x0)), Sqrt(OneMinus(alphaBar)))
}
