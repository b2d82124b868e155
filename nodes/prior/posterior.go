package prior

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// GaussianPosterior is the exact posterior of x ~ N(mean, diag(variances)) given a linear
// Gaussian measurement y = A x + σ n, n ~ N(0, I): the reference answer DPS should approach
// on a single-Gaussian prior. It uses the gain form (P = diag(variances),
// S = A P Aᵀ + σ² I, mean + P Aᵀ S⁻¹ (y − A mean), P − P Aᵀ S⁻¹ A P), which stays valid
// for zero prior variances; the covariance is symmetrised against rounding.
//
// It panics on inconsistent dimensions, negative variances or σ, or a singular S (σ = 0 with
// a rank-deficient A P Aᵀ): these are programming errors in a test or notebook.
func GaussianPosterior(mean, variances []float64, A [][]float64, y []float64, sigma float64) (postMean []float64, postCov [][]float64) {
	n, m := len(mean), len(y)
	if len(variances) != n {
		panic(fmt.Sprintf("prior.GaussianPosterior: %d variances for a mean of %d entries", len(variances), n))
	}
	if len(A) != m {
		panic(fmt.Sprintf("prior.GaussianPosterior: A has %d rows, y has %d entries", len(A), m))
	}
	if !(sigma >= 0) {
		panic(fmt.Sprintf("prior.GaussianPosterior: sigma %g must be ≥ 0", sigma))
	}
	a := mat.NewDense(m, n, nil)
	for i, row := range A {
		if len(row) != n {
			panic(fmt.Sprintf("prior.GaussianPosterior: A row %d has %d entries, want %d", i, len(row), n))
		}
		a.SetRow(i, row)
	}
	for i, v := range variances {
		if !(v >= 0) {
			panic(fmt.Sprintf("prior.GaussianPosterior: variance %d is %g, must be ≥ 0", i, v))
		}
	}
	p := mat.NewDiagDense(n, variances)
	var ap mat.Dense // A P, m×n
	ap.Mul(a, p)
	s := mat.NewSymDense(m, nil)
	for i := range m {
		for j := i; j < m; j++ {
			v := 0.0
			for k := range n {
				v += ap.At(i, k) * a.At(j, k)
			}
			if i == j {
				v += sigma * sigma
			}
			s.SetSym(i, j, v)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(s) {
		panic("prior.GaussianPosterior: A P Aᵀ + σ² I is not positive definite (σ = 0 with a rank-deficient A?)")
	}
	// S⁻¹ (A P) and S⁻¹ (y − A mean), then premultiply by (A P)ᵀ = P Aᵀ.
	var sInvAP mat.Dense
	if err := chol.SolveTo(&sInvAP, &ap); err != nil {
		panic(fmt.Sprintf("prior.GaussianPosterior: %v", err))
	}
	innov := mat.NewVecDense(m, append([]float64(nil), y...))
	var am mat.VecDense
	am.MulVec(a, mat.NewVecDense(n, append([]float64(nil), mean...)))
	innov.SubVec(innov, &am)
	var sInvInnov mat.VecDense
	if err := chol.SolveVecTo(&sInvInnov, innov); err != nil {
		panic(fmt.Sprintf("prior.GaussianPosterior: %v", err))
	}
	var gain mat.VecDense
	gain.MulVec(ap.T(), &sInvInnov)
	var reduce mat.Dense
	reduce.Mul(ap.T(), &sInvAP)
	postMean = make([]float64, n)
	postCov = make([][]float64, n)
	for i := range n {
		postMean[i] = mean[i] + gain.AtVec(i)
		postCov[i] = make([]float64, n)
	}
	for i := range n {
		for j := range n {
			pij := 0.0
			if i == j {
				pij = variances[i]
			}
			postCov[i][j] = pij - 0.5*(reduce.At(i, j)+reduce.At(j, i))
		}
	}
	return postMean, postCov
}
