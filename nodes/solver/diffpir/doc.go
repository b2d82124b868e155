// Package diffpir registers diffpir: DiffPIR, "Denoising Diffusion Models for Plug-and-Play
// Image Restoration" (Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, CVPR workshops (NTIRE)
// 2023; official code github.com/yuanzhi-zhu/DiffPIR, main_ddpir_sisr.py, main_ddpir_deblur.py,
// main_ddpir_inpainting.py; deepinv.sampling.DiffPIR is another implementation).
//
// DiffPIR is half-quadratic splitting run along a diffusion sampler: the prior's Tweedie
// estimate is the denoising (prior) step, a proximal map of the data term the data step, and
// the sampler carries the result to the next noise level. Per loop step, at diffusion step t
// of the respaced schedule, with σ̄_t² = (1 − ᾱ_t)/ᾱ_t:
//
//	x̂0   = Tweedie(x_t)   (clipped to [-1, 1] when clip)
//	ρ_t  = λ·σ_n²/σ̄_t²,   σ_n = max(σ_y, 0.002)/2
//	x̂0'  = argmin_x ½‖A x − y‖² + (ρ_t/2)‖x − x̂0‖²   (operator's data-prox, else CG)
//	ε̂    = (x_t − √ᾱ_t x̂0')/√(1 − ᾱ_t)
//	x_{t−1} = √ᾱ_{t−1} x̂0' + √(1 − ᾱ_{t−1})·(√(1 − ζ) ε̂ + √ζ ε),   ε ~ N(0, I)
//
// from x_T ~ N(0, I). The last step has ᾱ_{t−1} = 1, so the result is that step's x̂0'. One
// network evaluation per step: NFE = steps. The step's estimate (which the run's distances
// measure) is x̂0'.
//
// Units. σ_y is the problem's Gaussian noise std in [-1, 1] units (0.05 on the preset
// tasks). The official code writes the same ρ_t = λσ_n²/σ̄_t² with σ_n in [0, 1] units
// (noise_level_img = 12.75/255, while it adds noise of std 2·σ_n to images in [-1, 1]) and
// σ̄_t in the diffusion's [-1, 1] units; its data step runs on images in [0, 1], which leaves
// the minimiser unchanged (both terms scale by ¼). So σ_n = σ_y/2 here and λ means exactly
// what it means there: its values carry over. In consistent [-1, 1] units the weight is
// (λ/4)·σ_y²/σ̄_t². The official code floors σ_n at 0.001 ([0, 1] units), so that ρ_t > 0
// for noiseless measurements; so does this package (σ_y below 0.002 is treated as 0.002).
//
// Defaults and where they come from:
//   - steps 100: the paper's and official code's 100 NFE (official inpainting: 20).
//   - respacing quad: the official code's skip_type "quad" (QuadSteps), which takes large
//     steps at high noise and small ones near t = 0; even and stride are offered as well.
//   - lambda 7: the official deblurring script (λ = 1·7) and deepinv's default. The SR
//     script sweeps λ over 2…12 (ζ = 0.25); the inpainting script uses λ = 1, ζ = 1 for
//     noiseless measurements.
//   - zeta 1.0, changed for 32²: the official deblurring script uses ζ = 0.3 (0.1·3), its
//     SR script 0.25, its inpainting script 1.0, deepinv 0.1. On MNIST digits (100 steps,
//     λ = 7, PSNR in dB, digits 0–1 / digits 2–3) ζ = 1 beat ζ = 0.3 on every linear preset
//     task: sr4 22.5 vs 17.4 / 21.6 vs 20.8, inpaint-box 14.8 vs 14.5 / 13.9 vs 12.6,
//     inpaint-random 30.4 vs 25.8 / 30.2 vs 28.0, deblur-gauss 27.5 vs 25.6 / 29.4 vs 26.8,
//     deblur-motion 33.5 vs 31.4 / 34.3 vs 33.1 (ζ = 0.1 was worse still, ζ = 0.6 in
//     between); so the default is the official inpainting value for every task. Pass
//     zeta=0.3 for the paper's deblurring setting. With ζ = 1, λ = 1, 3 and 7 were within
//     about 1 dB of each other with no consistent winner, so λ stays 7.
//   - clip true: the official code takes x̂0 from guided-diffusion's p_sample with
//     clip_denoised=True.
//   - cg_iters 20: not in the paper (its operators all have closed-form data steps via FFT);
//     used for operators with an adjoint only (motion blur here; 50 gave the same PSNR).
//
// Differences from the official code: x_T is pure N(0, I) (the official scripts start from
// √ᾱ_T·(an upsampled/masked y) + √(1−ᾱ_T)·noise, which at t = 999 is noise up to a 0.6 %
// weight); its last step evaluates the network but neither takes a data step nor uses the
// result, returning the previous x_{t−1} at t = 0 — here the last step's data-consistent
// x̂0' is returned; it has an unused DDIM η (0) that is omitted.
//
// Refused before any work (CheckProblem): operators with neither a data-prox (closed form,
// e.g. by SVD) nor an adjoint for conjugate gradients (phase retrieval, the nonlinear blur:
// DiffPIR's data step is the proximal map of a linear least-squares term); noise models
// other than Gaussian (ρ_t needs σ_y); ζ outside [0, 1]; a step count the respacing cannot
// give.
package diffpir
