// Package reddiff registers reddiff: RED-diff, regularisation by denoising diffusion
// (Mardani, Song, Kautz, Vahdat, "A Variational Perspective on Solving Inverse Problems with
// Diffusion Models", ICLR 2024, arXiv:2305.04391; official code github.com/NVlabs/RED-diff,
// algos/reddiff.py with _configs/algo/reddiff.yaml).
//
// RED-diff fits a point estimate μ of x (the variational posterior q = δ_μ) by stochastic
// optimisation. For t running down the respaced schedule, T → 0, one step is
//
//	ε ~ N(0, I),  x_t = √ᾱ_t μ + √(1−ᾱ_t) ε,  ε̂ = ε̂_θ(x_t, t)         (one network forward)
//	loss = obs·mean((y − A(μ))²)/2 + λ_t·mean(sg[ε̂ − ε] ⊙ μ)          (means over y's / x's values)
//	g = ∇_μ loss = (obs/m)·∇_μ ½‖y − A(μ)‖² + (λ_t/n)(ε̂ − ε)
//	m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//	μ ← μ − lr/(1−β₁^k) · m / (√v/√(1−β₂^k) + 1e-8)                  (torch.optim.Adam, step k)
//
// with λ_t = λ·w(σ_t/α_t), σ_t/α_t = √((1−ᾱ_t)/ᾱ_t) and w the weighting param; m and n
// count the values of y and x per sample. sg is the stop-gradient: the network is never
// differentiated, so a step costs one forward pass (NFE = steps) and no backward pass
// through it — RED-diff's advantage over DPS. The data term is differentiated by
// graph.Gradient through the operator, so nonlinear operators (phase retrieval, the
// nonlinear blur) work and no operator capability is required.
//
// As in the official code: ε̂ is the network's raw output (awd: True), σ_x0 = 0 (x0_pred =
// μ), the timesteps are get_timesteps' 0, k, 2k, … (k = 1000/steps, "stride" respacing)
// visited from the largest, the loss is not divided by σ_y² (obs_weight absorbs the noise
// level; the official runs mostly use σ_y = 0), and μ is never clamped. Differences:
//
//   - The official means run over the whole batch (a factor 1/B on the loss); here they are
//     per sample. Adam is invariant to the loss's scale up to its ε = 1e-8, and per-sample
//     means make each image's run independent of its batch.
//   - The official sample() returns x0_pred, which (σ_x0 = 0) is μ before the last Adam
//     step; this returns μ after it (one more step, at t = 0 where λ_t ≈ 0.01·λ).
//   - Other noise models than Gaussian: the data term's ‖y − A(μ)‖² becomes the noise
//     model's squared Distance (the same for Gaussian noise), e.g. the Poisson forms'
//     weighted squared error; the official code has only the squared error.
//   - init auto is the official initialize(), H_pinv(y), with two changes. The pseudo-inverse
//     drops the singular values below 3 % of the largest (the official blur operator zeroes
//     its per-axis singular values below 3e-2 the same way): the full A⁺y of the 61×61
//     Gaussian blur amplifies σ = 0.05 noise by orders of magnitude, from which Adam (steps
//     of ≈ lr) never recovers — 3.9 dB on deblur-gauss with it, 27.3 dB without.
//     Pooling, bicubic SR and inpainting are unaffected. For the nonlinear blur the official
//     H_pinv is H(y) (y blurred again, with a fresh random kernel); here y itself, for any
//     operator without an SVD whose y is shaped like x. Phase retrieval gets the official
//     |crop(fftshift(ifft2(ifftshift(y))))|; anything else starts from zeros.
//
// Params and defaults (paper and official code: 256² ImageNet and FFHQ; the shipped prior is
// 32² MNIST):
//
//   - steps 1000 (paper and official runs), respacing stride (official get_timesteps; a
//     count with no integer stride is refused: use respacing=even). 1000 steps take
//     ≈ 50–110 s for two 32² digits on two CPU cores; fewer work with a lower PSNR (sr4:
//     19.3 dB at 100 steps, 22.2 at 1000).
//   - lr 0.25: the official config says 0.1, its README and scripts run 0.25 (inpainting)
//     and 0.5 (SR, deblurring, phase retrieval, nonlinear blur, HDR). On two 32² digits
//     with 1000 steps, lr 0.1/0.25/0.5 give sr4 22.3/22.2/21.5 dB and inpaint-box
//     14.3/14.6/15.9 dB: no clear winner, so the middle value.
//   - lambda 0.25 (official grad_term_weight), weighting linear (denoise_term_weight; the
//     official list: linear, sqrt, square, log, trunc_linear, power2over3, const),
//     obs_weight 1, beta1 0.9, beta2 0.99 (official; not torch's 0.999); Adam's ε = 1e-8
//     and weight decay 0 are fixed, as there.
//   - init auto (above); pinv, measurement, zeros and random (N(0, I)) are the others.
//   - clip false (official): true clamps the returned μ to [-1, 1], never the iterate.
//
// State: μ is the driver's X, Adam's m and v its Aux; Adam's step count is the loop step,
// so a checkpoint resumes bit for bit.
//
// Refused, before any work: a problem without a prior; init=pinv for an operator with
// neither SVD nor pseudo-inverse; init=measurement when y is not shaped like x; a stride
// respacing with no integer stride for steps.
//
// What to expect. On the linear-Gaussian toy (a Gaussian prior on 4×4, ×2 pooling,
// σ = 0.05) the mean of RED-diff's runs closes ≈ 0.9 of the prior → posterior-mean gap. It
// is a point estimate: the spread of its runs is Adam's jitter, which grows with lr
// (covariance ratio ≈ 0.06 at lr 0.02, 0.7–1 at the default 0.25), not a posterior spread.
// With σ_y absent from the loss and λ_t → 0 at the end, the last steps fit the data, noise
// included, closely (sr4 residual ≈ 0.03 against a noise norm ≈ 0.4). Phase retrieval
// lands on the problem's trivial ambiguities (sign flip, 180° rotation) as often as not.
package reddiff
