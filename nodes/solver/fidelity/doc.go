// Package fidelity measures how close a solver's samples come to the exact posterior on
// problems whose posterior is known in closed form — what tells a real bug from a weak
// method, and what no image benchmark can:
//
//   - Gaussian: a single-Gaussian prior on 1×4×4 "images" (per-pixel means and variances),
//     ×2 average-pool super-resolution, Gaussian noise σ = 0.05. The posterior is Gaussian
//     (prior.GaussianPosterior). A solver's N samples for one y are scored by the fraction of
//     the prior-mean → posterior-mean gap they close, 1 − ‖m̂ − m_post‖/‖μ − m_post‖ (1 for
//     an exact sampler up to Monte-Carlo error, 0 for the prior), and by the ratio of the
//     sample covariance's trace to the posterior's (1 exact, 0 for a point estimate).
//   - Mixture: the 2-D Gaussian mixture of notebooks/gmm-geometry.ipynb (four components,
//     the first coordinate measured with σ = 0.05, a bimodal posterior), as [B, 1, 1, 2]
//     points so that the SVD-based solvers see a 1×1 measurement. Scored by the energy
//     distance of the samples to exact posterior samples, next to the distance between two
//     exact draws (the Monte-Carlo floor).
//
// Both problems' operators offer every capability (adjoint, projection, pseudo-inverse, SVD,
// data-prox), so every diffusion solver runs on them. Run scores a list of solvers; Markdown
// prints the table (`dpsflow solvers --fidelity`).
package fidelity
