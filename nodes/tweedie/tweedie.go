// Package tweedie gives the Tweedie (posterior-mean) estimate of the clean image from a
// noisy one and the predicted noise, x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t, and its inverse.
//
// Both take the reference's coefficients √(1/ᾱ_t) and √(1/ᾱ_t − 1) as graph values, to be
// computed in float64 on the host (Coefs): 1 − ᾱ_t in float32 loses digits near t = 0.
package tweedie

import (
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
)

// Coefs returns √(1/ᾱ) and √(1/ᾱ − 1) for each ᾱ, in float64.
func Coefs(alphaBars []float64) (sqrtRecip, sqrtRecipM1 []float64) {
	sqrtRecip, sqrtRecipM1 = make([]float64, len(alphaBars)), make([]float64, len(alphaBars))
	for i, a := range alphaBars {
		sqrtRecip[i], sqrtRecipM1[i] = math.Sqrt(1/a), math.Sqrt(1/a-1)
	}
	return sqrtRecip, sqrtRecipM1
}

// Estimate returns x̂0 = √(1/ᾱ) x_t − √(1/ᾱ − 1) ε̂. With clip, x̂0 is clipped to [-1, 1]
// as the reference does, which zeroes the gradient of clipped pixels.
func Estimate(xt, eps, sqrtRecip, sqrtRecipM1 *Node, clip bool) *Node {
	x0 := Sub(Mul(sqrtRecip, xt), Mul(sqrtRecipM1, eps))
	if clip {
		x0 = ClipScalar(x0, -1, 1)
	}
	return x0
}

// Eps returns the noise that maps x0 to x_t: (√(1/ᾱ) x_t − x0) / √(1/ᾱ − 1). DDIM uses it
// to re-derive ε̂ from a clipped x̂0, so that the update stays consistent with it.
func Eps(xt, x0, sqrtRecip, sqrtRecipM1 *Node) *Node {
	return Div(Sub(Mul(sqrtRecip, xt), x0), sqrtRecipM1)
}
