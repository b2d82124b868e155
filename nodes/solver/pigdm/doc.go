// Package pigdm registers pigdm: Pseudoinverse-Guided Diffusion Models (ΠGDM; J. Song,
// A. Vahdat, M. Mardani, J. Kautz, "Pseudoinverse-Guided Diffusion Models for Inverse
// Problems", ICLR 2023). The official code is NVlabs/RED-diff, algos/pgdm.py (class PGDM,
// configs _configs/algo/pgdm.yaml and the pgdm lines of sample_test.sh); azula's
// guidance/pgdm.py (PGDMSampler) reads the same way.
//
// # Method
//
// ΠGDM approximates p(x0 | x_t) by N(x̂0, r_t² I), x̂0 = E[x0 | x_t] the prior's Tweedie
// estimate, so that for y = A x0 + σ_y n
//
//	p(y | x_t) ≈ N(A x̂0, r_t² AAᵀ + σ_y² I)
//	g = ∇_{x_t} log p(y | x_t) ≈ ((y − A x̂0)ᵀ (r_t² AAᵀ + σ_y² I)⁻¹ A ∂x̂0/∂x_t)ᵀ
//
// with r_t² = σ_t²/(1 + σ_t²), σ_t² = (1 − ᾱ_t)/ᾱ_t, i.e. r_t² = 1 − ᾱ_t for the VP
// process (the variance of x0 | x_t when x0 ~ N(0, I)). g is a vector-Jacobian product
// through the prior, taken with graph.Gradient as the gradient with respect to x_t of
// ⟨stop_gradient(v'), x̂0(x_t)⟩, where
//
//	v' = r_t² Aᵀ(r_t² AAᵀ + σ_y² I)⁻¹(y − A x̂0) = V Σᵀ(ΣΣᵀ + σ_y²/r_t²)⁻¹ Uᵀ(y − A x̂0)
//
// through the operator's SVD (likelihood=noisy), or, with σ_y taken as 0 (likelihood=pinv),
// v' = A⁺y − A⁺A x̂0, the official code's H_pinv(y) − H_pinv(H(x̂0)); the step uses
// g' = r_t² g = VJP(v'), which stays well scaled as r_t² → 0. Each step (loop step k,
// diffusion step t, previous kept step s, ᾱ_s = 1 at the last) is DDIM plus the guidance:
//
//	ε̂ = prior(x_t, t), x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t
//	c1 = η √((1 − ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t)), c2 = √(1 − ᾱ_s − c1²)
//	x_s = √ᾱ_s x̂0 + c1 z + c2 ε̂ + scale·w_t·g'      z ~ N(0, I)
//
//	weight=official  w_t = √ᾱ_s √ᾱ_t    (RED-diff awd=True: coeff = √ᾱ_s·√ᾱ_t·grad_term_weight
//	                                      on grad_term = VJP(H⁺y − H⁺H x̂0) = g'; azula the same)
//	weight=exact     w_t = √ᾱ_s/√ᾱ_t − c2/√(1−ᾱ_t)
//
// The exact weight is what putting g into the noise prediction gives, ε̃ = ε̂ − √(1−ᾱ_t) g
// (the conditional score), then the same DDIM step with ε̃ and its x̃0: for a Gaussian prior
// of unit per-pixel variance r_t² is exactly Var[x0 | x_t], ΠGDM's likelihood is exact, and
// this sampler runs DDIM on the exact posterior score (the package tests check both). The
// official weight is smaller by a factor of order ᾱ_t at high noise (RED-diff's awd=False is ᾱ_t times
// the exact weight): it damps the guidance where the network's ∂x̂0/∂x_t, which carries a
// 1/√ᾱ_t factor, is unreliable. On the MNIST prior weight=exact diverges in the first
// steps (NaN near t = 870 on sr4); weight=official does not, so it is the default. On a
// Gaussian toy with a weak measurement (σ_y = 0.5) the official weight closes little of
// the gap to the posterior mean; with σ_y = 0.05 the two agree within Monte-Carlo error.
//
// The result is the last x_s (x_0); each step's estimate (for distances and snapshots) is
// the clean image its update implies, x̂0 + (scale·w_t/√ᾱ_s)·g', which is x_0 at the last
// step. NFE = steps: one network evaluation per step (the VJP adds one backward pass).
//
// # Defaults
//
//   - steps 100, respacing stride (t = 990, 980, …, 0): the official scripts' exp.num_steps=100
//     and get_timesteps' range(0, 1000, 1000/steps). Unchanged for 32² digits.
//   - eta 1.0: every pgdm line of the official sample_test.sh sets algo.eta=1.0 (the yaml's
//     default is 0.0).
//   - scale 1: the official grad_term_weight.
//   - weight official (awd=True in the official yaml), see above.
//   - likelihood noisy: the paper's noisy ΠGDM with σ_y from the problem's Gaussian noise.
//     The official PGDM code ignores algo.sigma_y and always runs the noiseless
//     pseudo-inverse guidance (likelihood=pinv). With noisy measurements pinv divides the
//     noise by tiny singular values where noisy does not: on deblur-gauss (σ = 0.05) pinv
//     gives 3 dB, noisy 27 dB.
//   - clip false: the official code does not clip x̂0. With clip, x̂0 is clipped to [-1, 1]
//     before the guidance (its Jacobian is then 0 on clipped pixels) and ε̂ is re-derived.
//   - The start is x_T ~ N(0, I). The official code starts from √ᾱ_T A⁺y + √(1−ᾱ_T) z, which
//     differs by √ᾱ_990 ≈ 0.007·A⁺y.
//
// # Refusals (before any work)
//
// pigdm needs a prior and the operator's pseudo-inverse (Info.Needs), so nonlinear operators
// (phase retrieval, the nonlinear blur) and motion blur are refused. It models Gaussian
// noise only. likelihood=noisy needs the operator's SVD to apply (r_t² AAᵀ + σ_y² I)⁻¹; an
// operator with a pseudo-inverse but no SVD is refused with a message that points to
// likelihood=pinv. There is no conjugate-gradient fallback, because every built-in operator
// with a pseudo-inverse also has an SVD. Also refused: η outside [0, 1], and steps that the
// respacing cannot give (stride needs a whole number of steps per kept step, so 300 fails).
//
// The preset tasks' scale (4.0, the DPS step) is not this scale: runs pass it to the DPS
// family only. Scale 4 diverges on sr4.
package pigdm
