// Package daps registers the solver daps: Decoupled Annealing Posterior Sampling (B. Zhang,
// W. Chu, J. Berner, C. Meng, A. Anandkumar, Y. Song, "Improving Diffusion Inverse Problem
// Solving with Decoupled Noise Annealing", CVPR 2025, arXiv:2407.01521; official code
// github.com/zhangbingliang2019/DAPS: sampler.py (DAPS), cores/scheduler.py, cores/mcmc.py,
// configs/sampler/edm_daps.yaml, configs/task/*.yaml; the 2024 release had the same loop in
// sampler.py with the Langevin step in LangevinDynamics).
//
// # The update
//
// DAPS works in the variance-exploding picture x = x0 + σ·n. It anneals over noise levels
// σ_0 > … > σ_{N−1} (then σ_N = 0) and, at each level, decouples the next iterate from the
// current one:
//
//  1. x̂0 = the probability-flow ODE from σ_i to 0 started at x_i, with ode_steps Euler steps
//     on the levels (σ_i^{1/ρ} + r·(σ_ode^{1/ρ} − σ_i^{1/ρ}))^ρ, r = j/(M−1), then 0:
//     x ← x + (σ_{j+1} − σ_j)·ε̂(√ᾱ_j·x, t_j) (EDM's Euler step on dx/dσ = −σ∇log p_σ; also
//     DDIM η = 0). ode_steps network evaluations; one step is the Tweedie mean.
//  2. Langevin dynamics on p(x0 | x_i, y) ∝ N(x0; x̂0, σ_i² I)·exp(−d(y, A(x0))²/(2τ²)),
//     from x0 = x̂0, langevin_steps times:
//     x0 ← x0 + η_i·((x̂0 − x0)/σ_i² − ∇_{x0} d²/(2τ²)) + √(2η_i)·n,
//     η_i = lr·(1 + (i/N)·(lr_min_ratio − 1)). The gradient is graph.Gradient through the
//     operator, so any operator works (linear or not: phase retrieval, the nonlinear blur);
//     no network evaluation.
//  3. x_{i+1} = x0 + σ_{i+1}·n. The result is the last x0 (σ_N = 0).
//
// NFE = annealing_steps × ode_steps (DAPS-1K: 200 × 5 = 1000). One annealing step (the
// unrolled ODE and Langevin chain) is one compiled step of nodes/solver/diffusion; the
// state is x_i and the random-number state, so checkpoints resume bit for bit.
//
// # Choices where the official code does not carry over
//
//   - The prior is the discrete 1000-step DDPM (VP) model. ε̂ at VE level σ is asked of the
//     network at x_t = √ᾱ·x, t the step whose σ_t = √((1−ᾱ_t)/ᾱ_t) is nearest σ. The
//     official code feeds the network c_in = 1/√(1+σ²) and a fractional timestep; ours
//     must be an integer, so every annealing and ODE level is snapped to the nearest σ_t
//     and used as that σ_t throughout (scaling, Euler step, Langevin prior width, the
//     noise added). Then the network sees exactly the noise level it is told, and with
//     the exact Gaussian-mixture prior every ε̂ is exact. Cost: below σ ≈ 0.1 the schedule's
//     levels are coarser than a fine ODE grid (σ_0 = 0.01, σ_1 = 0.0148, …), which floors
//     the ODE's accuracy at ≈ 4e-3 on the toy; with the default 5 steps the Euler error
//     (≈ 0.1–0.7 there) dominates anyway. The largest level is σ_999 ≈ 157 for the linear
//     β schedule; sigma_max above the schedule's largest level is refused.
//   - The likelihood is exp(−d²/(2τ²)) with d the noise model's per-sample distance
//     (noise.Model.Distance), computed as ‖y − A(x0)‖² directly for Gaussian noise. This is
//     the paper's and the 2024 code's form (loss/(2τ²)); the 2025 refactor (cores/mcmc.py)
//     takes −∇‖A(x) − y‖²/τ², twice that gradient (equivalent to our τ/√2). For Poisson
//     noise the squared distance (the chosen PoissonForm) takes the place of the squared
//     norm; τ is then a weight, not a noise level.
//   - τ: the official τ = 0.01 is kept as the default although σ_y = 0.05 (the paper
//     over-weights the data term on purpose; the final result then fits y to about the
//     noise level). tau = 0 uses the Gaussian noise model's σ_y, the exact likelihood,
//     and is refused for other noise models. With τ = σ_y the official lr = 1e-4 and 100
//     steps relax the data term only by η·L/τ²·100 ≈ 1 for 2× average pooling, so use
//     larger lr there (the toy test uses 1e-3).
//   - The official loop (2024 code) has N steps with σ_i on linspace(0, 1, N) including
//     σ_min, then 0, and η's ratio i/N; the 2025 refactor builds N+1 levels, drops the last
//     nonzero one and stops its ODE at 0.01 instead of 0 — differences far below the
//     sampling noise. We follow the 2024 loop. The ODE's σ_min (0.01) and ρ = 7 are the
//     official diffusion_scheduler_config; one rho param sets both spacings (both
//     official configs use poly-7). The official NaN guard (return zeros) is replaced by
//     the driver's divergence report. HMC and Metropolis–Hastings (mc_algo) and the
//     prior_solver variants other than "gaussian" are not implemented.
//
// # Defaults
//
// Every default is the official pixel-space FFHQ/ImageNet 256² setting (edm_daps.yaml and
// the task configs' Langevin settings for down_sampling, inpainting, the blurs):
// annealing_steps 200, sigma_max 100, sigma_min 0.1, rho 7, ode_steps 5, ode_sigma_min 0.01,
// langevin_steps 100, lr 1e-4, lr_min_ratio 0.01, tau 0.01. Official per-task lr: phase
// retrieval 5e-5, nonlinear blur 5e-5 (2024; the 2025 config has 1e-5 with 200 steps). The
// solver does not know the task, so pass lr for those. None had to change for 32² MNIST: the
// default run gives sr4 20.6 dB on 2 digits, at 1000 network evaluations (~46 CPU-seconds
// per image on the embedded backend). A faster setting for sanity runs is
// annealing_steps=50 ode_steps=2 langevin_steps=50 (NFE 100).
//
// # Refusals
//
// It needs a prior and nothing of the operator. It refuses sigma_max beyond the prior's
// largest noise level, sigma_min ≥ sigma_max, ode_sigma_min > sigma_min, and tau = 0 without
// Gaussian noise (or with σ_y = 0).
package daps
