// Package linear registers the classical closed-form solvers of linear inverse problems,
// which need no prior and no network (NFE 0):
//
//   - pinv: x = A⁺y, the Moore–Penrose pseudo-inverse of the measurement (the least-squares
//     solution of least norm). Needs the operator's pseudo-inverse.
//   - wiener: Tikhonov / Wiener regularisation towards a constant image μ,
//     x = argmin ‖A x − y‖² + λ‖x − μ‖², in closed form through the operator's SVD
//     (operator.ProxDataSVD). Needs the SVD. With λ = σ²/σ_x² it is the exact posterior
//     mean of the Gaussian prior N(μ, σ_x² I) under Gaussian noise of deviation σ.
//
// Both are one step of the shared solver.Loop, so they report progress, snapshots and
// cancellation like every other solver. A one-step run has no checkpoint (Loop writes none
// after the last step) and resumes only from step 0, which recomputes the same result bit
// for bit: the step reads y, never the iterate.
//
// Units: images live in [-1, 1], so μ = 0 is mid-grey; σ_x² = 0.25 is the variance about
// 0 of values spread over [-1, 1] (a uniform variable on [-1, 1] has 1/3, a typical natural
// image about 0.2–0.3).
package linear
