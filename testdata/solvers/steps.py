#!/usr/bin/python3
"""Independent PyTorch references for one loop step of dpsflow's diffusion solvers.

Usage: /usr/bin/python3 testdata/solvers/steps.py OUTDIR

Writes, per case, the step's inputs (x_t, aux state, y, random draws) and its expected
outputs (x_{t-1}, aux state, estimate) as float64 .npy files, plus OUTDIR/meta.json, which
nodes/solver/builtin/crosscheck_test.go reads to run the same step through
diffusion.Stepper.StepWith and compare.

Everything here is written from the papers and the official codes (cited per solver), in
torch float64, and uses nothing from dpsflow:

  problem   a 1-component Gaussian prior N(mu, diag(s2)) on [B=3, 1, 4, 4] images, whose exact
            eps(x_t, t) = (x_t - sqrt(abar_t) mu) sqrt(1 - abar_t) / (abar_t s2 + 1 - abar_t)
            is written in torch (autograd gives the vector-Jacobian products);
            the 1000-step linear beta schedule (1e-4 ... 0.02, np.linspace as guided-diffusion,
            the official DDRM and RED-diff codes); y = avg_pool2d(x, 2) + 0.05 n.
  operator  torch's avg_pool2d (kernel 2); its explicit 4x16 matrix A (per sample), built by
            applying avg_pool2d to the 16 unit images; A's SVD from torch.linalg.svd and A^+
            from torch.linalg.pinv (independent of dpsflow's separable SVD).

Random draws. Draws that a step uses as spectral coefficients (DDRM) depend on the SVD's
sign/ordering/rotation conventions, which differ between torch and dpsflow (A's four
singular values are all 1/2, so the row-space basis is arbitrary). So every draw is saved in
pixel space, w ~ N(0, I) [B, 1, 4, 4], and each side turns it into coefficients with its own
V: c = V^T w (all 16: "coef_full") or its 4 row-space entries ("coef_lead"). V c and
V_row c_row are then the projections of w, which do not depend on the conventions, and so
neither does x_{t-1} in pixel space, which is what is compared. Draws used as pixels are
"pixel".
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

B, C, H, W = 3, 1, 4, 4
D = C * H * W
T = 1000
SIGMA_Y = 0.05

# The schedule, as guided-diffusion / DDRM's get_beta_schedule("linear") / RED-diff's Diffusion.
BETAS = np.linspace(1e-4, 0.02, T, dtype=np.float64)
ABAR = np.cumprod(1.0 - BETAS, axis=0)


def alpha(t):
    """abar_t, with abar_{-1} = 1 (DDRM's compute_alpha and RED-diff's Diffusion.alpha both
    prepend beta = 0 and index t + 1)."""
    return 1.0 if t < 0 else float(ABAR[t])


# ---- respacing ------------------------------------------------------------------------------

def stride_steps(steps):
    """The official DDRM (runners/diffusion.py sample_image) and RED-diff (get_timesteps):
    skip = T // steps, seq = range(0, T, skip); guided-diffusion's "ddimN"."""
    skip = T // steps
    return list(range(0, T, skip))


def even_steps(steps):
    """guided-diffusion's space_timesteps(T, [steps]) with one section."""
    if steps == 1:
        return [0]
    frac_stride = (T - 1) / (steps - 1)
    cur_idx = 0.0
    taken = []
    for _ in range(steps):
        taken.append(round(cur_idx))
        cur_idx += frac_stride
    return sorted(set(taken))


def loop_t(ts, k):
    """Loop step k (0 = noisiest) runs ts[n-1-k]; the next (previous) kept step, -1 at the end."""
    n = len(ts)
    return ts[n - 1 - k], (ts[n - 2 - k] if n - 2 - k >= 0 else -1)


# ---- the problem ---------------------------------------------------------------------------

def prior_params():
    i = torch.arange(D, dtype=torch.float64)
    mu = (0.35 * torch.sin(0.9 * i + 0.3) - 0.1).reshape(1, C, H, W)
    s2 = (0.45 + 0.4 * torch.cos(1.7 * i) ** 2).reshape(1, C, H, W)
    return mu, s2


MU, S2 = prior_params()


def eps_model(xt, t):
    """The exact noise prediction of N(MU, diag(S2)) at diffusion step t."""
    a = alpha(t)
    return (xt - math.sqrt(a) * MU) * math.sqrt(1 - a) / (a * S2 + 1 - a)


def tweedie(xt, t):
    a = alpha(t)
    et = eps_model(xt, t)
    return (xt - et * math.sqrt(1 - a)) / math.sqrt(a), et


def H_op(x):
    """The x2 average-pool super-resolution operator."""
    return F.avg_pool2d(x, 2)


def dense_A():
    eye = torch.eye(D).reshape(D, C, H, W)
    return H_op(eye).reshape(D, -1).T.contiguous()  # [4, 16]: column j = A e_j


A = dense_A()
M = A.shape[0]
U_, S_, Vh_ = torch.linalg.svd(A, full_matrices=True)  # A = U diag(S) Vh[:M]
V_ = Vh_.T  # [16, 16], columns are right singular vectors, the first M for S_
A_PINV = torch.linalg.pinv(A)


def flat(x):
    return x.reshape(x.shape[0], -1)


def img(v):
    return v.reshape(-1, C, H, W)


def Vt(x):
    return flat(x) @ V_


def Vmul(c):
    return img(c @ V_.T)


def Ut(y):
    return flat(y) @ U_


def At(v):
    """A^T v for v [B, M] -> image."""
    return img(v @ A)


# ---- solvers -------------------------------------------------------------------------------

def ddrm_step(xt, y0, t, tn, w_missing, w_after, w_before, etaA, etaB, etaC, sigma_0):
    """One iteration of bahjat-kawar/ddrm functions/denoising.py efficient_generalized_steps,
    with flattened vectors and the explicit SVD; the three torch.randn_like draws are the
    given pixel-space draws turned into coefficients with this V (see the module doc)."""
    x = xt
    singulars = S_
    Sigma = torch.zeros(D)
    Sigma[: singulars.shape[0]] = singulars
    U_t_y = Ut(y0)
    Sig_inv_U_t_y = U_t_y / singulars[: U_t_y.shape[-1]]

    at, at_next = alpha(t), alpha(tn)
    et = eps_model(xt, t)
    x0_t = (xt - et * math.sqrt(1 - at)) / math.sqrt(at)  # not clipped, as the official code

    sigma_next = math.sqrt(1 - at_next) / math.sqrt(at_next)
    V_t_x0 = Vt(x0_t)
    SVt_x0 = (V_t_x0 * Sigma)[:, : U_t_y.shape[1]]

    falses = torch.zeros(V_t_x0.shape[1] - singulars.shape[0], dtype=torch.bool)
    # The official code tests both strictly; dpsflow (doc.go, documented departure) uses
    # s*sigma' >= sigma_0 for "before". They differ only when s*sigma' == sigma_0 exactly, which
    # no case here comes near (asserted).
    assert torch.all((singulars * sigma_next - sigma_0).abs() > 1e-6)
    cond_before_lite = singulars * sigma_next > sigma_0
    cond_after_lite = singulars * sigma_next < sigma_0
    cond_before = torch.hstack((cond_before_lite, falses))
    cond_after = torch.hstack((cond_after_lite, falses))

    std_nextC = sigma_next * etaC
    sigma_tilde_nextC = math.sqrt(sigma_next ** 2 - std_nextC ** 2)
    std_nextA = sigma_next * etaA
    sigma_tilde_nextA = math.sqrt(sigma_next ** 2 - std_nextA ** 2)
    diff_sigma_t_nextB = torch.sqrt(sigma_next ** 2 - sigma_0 ** 2 / singulars[cond_before_lite] ** 2 * (etaB ** 2))

    z_missing = Vt(w_missing)            # randn_like(V_t_x0)
    z_after = Vt(w_after)[:, :M]         # randn_like(V_t_x0[:, cond_after]), per observed coefficient
    z_before = Vt(w_before)[:, :M]       # randn_like(U_t_y)

    # missing pixels
    Vt_xt_mod_next = V_t_x0 + sigma_tilde_nextC * Vt(et) + std_nextC * z_missing
    # less noisy than y (after)
    Vt_xt_mod_next[:, cond_after] = (
        V_t_x0[:, cond_after] + sigma_tilde_nextA * ((U_t_y - SVt_x0) / sigma_0)[:, cond_after_lite]
        + std_nextA * z_after[:, cond_after_lite])
    # noisier than y (before)
    Vt_xt_mod_next[:, cond_before] = (
        Sig_inv_U_t_y[:, cond_before_lite] * etaB + (1 - etaB) * V_t_x0[:, cond_before]
        + diff_sigma_t_nextB * z_before[:, cond_before_lite])

    xt_mod_next = Vmul(Vt_xt_mod_next)
    xt_next = math.sqrt(at_next) * xt_mod_next
    return xt_next, x0_t


def pgdm_step(xt, y0, t, s, z, eta, grad_term_weight, likelihood, weight, sigma_y):
    """One iteration of NVlabs/RED-diff algos/pgdm.py PGDM.sample (awd=True, cond_awd=False,
    mcg=False), z the given torch.randn_like(xt).

    likelihood "pinv" is the official mat = H_pinv(y_0) - H_pinv(H(x0_pred)). likelihood
    "noisy" is dpsflow's documented default (pigdm/doc.go: the paper's noisy PiGDM, which the
    official code does not implement): mat = r_t^2 A^T (r_t^2 A A^T + sigma_y^2 I)^{-1}
    (y - A x0_pred), r_t^2 = 1 - abar_t, written here with an explicit linear solve.
    weight "official" is the official coeff = sqrt(abar_s) sqrt(abar_t) grad_term_weight;
    weight "exact" (dpsflow's option, doc.go) is written as the paper's DDIM step on the
    conditional noise eps~ = eps - sqrt(1 - abar_t) g, g = grad_term / r_t^2."""
    alpha_t, alpha_s = alpha(t), alpha(s)
    c1 = math.sqrt((1 - alpha_t / alpha_s) * (1 - alpha_s) / (1 - alpha_t)) * eta
    c2 = math.sqrt((1 - alpha_s) - c1 ** 2)
    xt = xt.clone().requires_grad_(True)
    x0_pred, et = tweedie(xt, t)
    n = xt.shape[0]
    if likelihood == "pinv":
        def H_pinv(v):
            return img(flat(v) @ A_PINV.T)
        mat = (H_pinv(y0) - H_pinv(H_op(x0_pred))).reshape(n, -1)
    else:
        r2 = 1 - alpha_t
        K = r2 * (A @ A.T) + sigma_y ** 2 * torch.eye(M)
        res = flat(y0 - H_op(x0_pred))  # [n, M]
        sol = torch.linalg.solve(K, res.T).T
        mat = r2 * flat(At(sol))
    mat_x = (mat.detach() * x0_pred.reshape(n, -1)).sum()
    grad_term = torch.autograd.grad(mat_x, xt)[0].detach()
    x0_pred, et = x0_pred.detach(), et.detach()
    if weight == "official":
        coeff = math.sqrt(alpha_s) * math.sqrt(alpha_t) * grad_term_weight
        xs = math.sqrt(alpha_s) * x0_pred + c1 * z + c2 * et + grad_term * coeff
    else:
        g = grad_term_weight * grad_term / (1 - alpha_t)
        et_c = et - math.sqrt(1 - alpha_t) * g
        x0_c = (xt.detach() - math.sqrt(1 - alpha_t) * et_c) / math.sqrt(alpha_t)
        xs = math.sqrt(alpha_s) * x0_c + c1 * z + c2 * et_c
    # The estimate: the official code records the unguided x0_pred; dpsflow (doc.go) reports
    # "the clean image its update implies", x_s = sqrt(abar_s) x0~ + c2 eps + c1 z with the
    # unguided eps held fixed. For weight "exact" that is not the conditional Tweedie
    # estimate x0_c above: it differs by c2 g' / (sqrt(abar_s) sqrt(1 - abar_t)).
    est = x0_pred + (xs - (math.sqrt(alpha_s) * x0_pred + c1 * z + c2 * et)) / math.sqrt(alpha_s)
    return xs, est



def quad_seq(n):
    """DiffPIR's skip_type "quad" (main_ddpir_sisr.py): seq = int(sqrt(linspace(0, T^2, n))),
    the last lowered by one; loop step i runs t_i = T-1-seq[i]."""
    seq = np.sqrt(np.linspace(0, T ** 2, n))
    seq = [int(s) for s in list(seq)]
    seq[-1] = seq[-1] - 1
    return seq


REDUCED = np.sqrt(1.0 - ABAR) / np.sqrt(ABAR)  # sigma_t of x_t / sqrt(abar_t)


def find_nearest(array, value):
    """DiffPIR's utils_model.find_nearest (also how dpsflow's DAPS snaps levels)."""
    array = np.asarray(array)
    return int((np.abs(array - value)).argmin())


def p2o(psf, shape):
    """DiffPIR utils/utils_sisr.py p2o."""
    otf = torch.zeros(psf.shape[:-2] + shape).type_as(psf)
    otf[..., :psf.shape[2], :psf.shape[3]].copy_(psf)
    for axis, axis_size in enumerate(psf.shape[2:]):
        otf = torch.roll(otf, -int(axis_size / 2), dims=axis + 2)
    return torch.fft.fftn(otf, dim=(-2, -1))


def splits(a, sf):
    b = torch.stack(torch.chunk(a, sf, dim=2), dim=4)
    return torch.cat(torch.chunk(b, sf, dim=3), dim=4)


def upsample(x, sf):
    z = torch.zeros((x.shape[0], x.shape[1], x.shape[2] * sf, x.shape[3] * sf)).type_as(x)
    z[..., 0::sf, 0::sf].copy_(x)
    return z


def pre_calculate(x, k, sf):
    w, h = x.shape[-2:]
    FB = p2o(k, (w * sf, h * sf))
    FBC = torch.conj(FB)
    F2B = torch.pow(torch.abs(FB), 2)
    STy = upsample(x, sf)
    FBFy = FBC * torch.fft.fftn(STy, dim=(-2, -1))
    return FB, FBC, F2B, FBFy


def data_solution(x, FB, FBC, F2B, FBFy, alpha_, sf):
    """DiffPIR utils/utils_sisr.py data_solution: argmin ||y - (k * x) down_sf||^2 + alpha ||x - z||^2
    in closed form (circular convolution, decimation at phase 0)."""
    FR = FBFy + torch.fft.fftn(alpha_ * x, dim=(-2, -1))
    x1 = FB.mul(FR)
    FBR = torch.mean(splits(x1, sf), dim=-1, keepdim=False)
    invW = torch.mean(splits(F2B, sf), dim=-1, keepdim=False)
    invWBR = FBR.div(invW + alpha_)
    FCBinvWBR = FBC * invWBR.repeat(1, 1, sf, sf)
    FX = (FR - FCBinvWBR) / alpha_
    return torch.real(torch.fft.ifftn(FX, dim=(-2, -1)))


def diffpir_step(x, y, i, seq, noise, lambda_, zeta, sigma_y):
    """One iteration of yuanzhi-zhu/DiffPIR main_ddpir_sisr.py (generate_mode DiffPIR,
    model_output_type pred_xstart, sub_1_analytic, sr_mode blur, iter_num_U 1, eta 0,
    guidance_scale 1), on the 2x2 box kernel, whose blur + decimation is avg_pool2d. y is in
    [-1, 1]; the official y (img_L) is in [0, 1]. In float64 (the official betas are float32
    and the data step runs in float32). dpsflow's departures that matter here (doc.go): the
    noise level sigma = max(0.001, noise_level_img) is written with noise_level_img = sigma_y/2,
    as the official code adds noise of std 2*noise_level_img in [-1, 1] units; zeta, lambda are
    params. With eta = 0 the official eta*randn term vanishes; `noise` is its second
    randn_like (the zeta one)."""
    sqrt_ab = torch.from_numpy(np.sqrt(ABAR))
    sqrt_1m_ab = torch.from_numpy(np.sqrt(1.0 - ABAR))
    sigma = max(0.001, sigma_y / 2)
    sigmas = [REDUCED[T - 1 - j] for j in range(T)]
    sigma_ks = REDUCED  # model_out_type pred_xstart, DiffPIR
    rhos = lambda_ * (sigma ** 2) / (sigma_ks ** 2)
    y01 = y / 2 + 0.5
    k = torch.full((1, 1, 2, 2), 0.25)
    FB, FBC, F2B, FBFy = pre_calculate(y01, k, 2)

    curr_sigma = sigmas[seq[i]]
    t_i = find_nearest(REDUCED, curr_sigma)
    # p_sample(clip_denoised=True)'s pred_xstart: from eps, clamped to [-1, 1].
    et = eps_model(x, t_i)
    x0 = (x * math.sqrt(1 / ABAR[t_i]) - et * math.sqrt(1 / ABAR[t_i] - 1)).clamp(-1, 1)
    assert seq[i] != seq[-1]
    tau = float(rhos[t_i])
    x0_p = x0 / 2 + 0.5
    x0_p = data_solution(x0_p, FB, FBC, F2B, FBFy, tau, 2)
    x0_p = x0_p * 2 - 1
    # The same minimiser written with the explicit matrix, in [-1, 1] units (A 1 = 1): checks
    # that the box kernel's FFT solution is avg_pool2d's.
    direct = img(torch.linalg.solve(A.T @ A + tau * torch.eye(D), (flat(y) @ A + tau * flat(x0)).T).T)
    assert (direct - x0_p).abs().max().item() < 1e-12, (direct - x0_p).abs().max().item()
    x0 = x0 + 1.0 * (x0_p - x0)
    t_im1 = find_nearest(REDUCED, sigmas[seq[i + 1]])
    eps = (x - sqrt_ab[t_i] * x0) / sqrt_1m_ab[t_i]
    eta_sigma = 0.0
    x = (sqrt_ab[t_im1] * x0 + np.sqrt(1 - zeta) * (torch.sqrt(sqrt_1m_ab[t_im1] ** 2 - eta_sigma ** 2) * eps)
         + np.sqrt(zeta) * sqrt_1m_ab[t_im1] * noise)
    return x, x0, t_i, t_im1


def reddiff_step(mu0, m0, v0, step, y0, t, noise_xt, lr, grad_term_weight, obs_weight, beta1, beta2):
    """One iteration of NVlabs/RED-diff algos/reddiff.py REDDIFF.sample (awd=True,
    sigma_x0 = 0, denoise_term_weight linear) with torch.optim.Adam resumed at its state
    (exp_avg m0, exp_avg_sq v0, `step` steps taken). dpsflow's documented departure
    (reddiff/doc.go): the means are per sample, i.e. the official loss times B."""
    n = mu0.shape[0]
    mu = mu0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mu], lr=lr, betas=(beta1, beta2), weight_decay=0.0, foreach=False)
    optimizer.state[mu] = {"step": torch.tensor(float(step)), "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
    alpha_t = alpha(t)
    x0_pred = mu  # + sigma_x0 * noise_x0, sigma_x0 = 0
    xt = math.sqrt(alpha_t) * x0_pred + math.sqrt(1 - alpha_t) * noise_xt
    with torch.no_grad():
        et = eps_model(xt, t)
    et = et.detach()
    e_obs = y0 - H_op(x0_pred)
    loss_obs = (e_obs ** 2).mean() / 2
    loss_noise = torch.mul((et - noise_xt).detach(), x0_pred).mean()
    snr_inv = math.sqrt(1 - alpha_t) / math.sqrt(alpha_t)
    w_t = grad_term_weight * snr_inv
    v_t = obs_weight
    loss = n * (w_t * loss_noise + v_t * loss_obs)  # n *: per-sample means (dpsflow)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    st = optimizer.state[mu]
    assert int(st["step"].item()) == step + 1
    return mu.detach(), st["exp_avg"].detach(), st["exp_avg_sq"].detach()


class PolyScheduler:
    """DAPS (2024 release, sampler.py Scheduler) with schedule 'linear' (sigma(t) = t) and
    timestep 'poly-rho': num_steps levels on linspace(0, 1, num_steps), then sigma_final.
    snap: dpsflow's documented choice (daps/doc.go) — every level is replaced by the nearest
    sigma_t of the discrete DDPM schedule, as the network takes integer timesteps."""

    def __init__(self, num_steps, sigma_max, sigma_min, sigma_final, rho, snap):
        steps = np.linspace(0, 1, num_steps)
        fn = lambda r: (sigma_max ** (1 / rho) + r * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
        time_steps = [fn(s) for s in steps]
        if snap:
            time_steps = [float(REDUCED[find_nearest(REDUCED, s)]) for s in time_steps]
        time_steps = np.append(time_steps, sigma_final)
        self.num_steps = num_steps
        self.sigma_steps = time_steps
        self.factor_steps = [max(2 * time_steps[i] * 1 * (time_steps[i] - time_steps[i + 1]), 0) for i in range(num_steps)]


def daps_score(x, sigma):
    """model.score(x, sigma) = (tweedie(x) - x)/sigma^2 for the VP prior at the step t whose
    sigma_t = sigma (sigma already snapped): tweedie(x) = (x_t - sqrt(1-abar) eps(x_t, t))/sqrt(abar),
    x_t = sqrt(abar) x."""
    t = find_nearest(REDUCED, sigma)
    assert abs(REDUCED[t] - sigma) < 1e-15
    a = alpha(t)
    xt = math.sqrt(a) * x
    d = (xt - math.sqrt(1 - a) * eps_model(xt, t)) / math.sqrt(a)
    return (d - x) / sigma ** 2


def daps_step(xt, y, step, cfg, lgvd_noise, renoise):
    """One annealing step of zhangbingliang2019/DAPS (2024 release, sampler.py DAPS.sample:
    the PF-ODE by DiffusionSampler._euler, then LangevinDynamics.sample with torch.optim.SGD,
    then x0y + randn * sigma_steps[step + 1]), with dpsflow's documented snapping."""
    ann = PolyScheduler(cfg["annealing_steps"], cfg["sigma_max"], cfg["sigma_min"], 0.0, cfg["rho"], snap=True)
    sigma = float(ann.sigma_steps[step])
    # 1. reverse diffusion (PF-ODE, Euler)
    ode = PolyScheduler(cfg["ode_steps"], sigma, cfg["ode_sigma_min"], 0.0, cfg["rho"], snap=True)
    x = xt
    with torch.no_grad():
        for j in range(ode.num_steps):
            s_j, factor = ode.sigma_steps[j], ode.factor_steps[j]
            x = x + factor * daps_score(x, s_j) * 0.5
    x0hat = x
    # 2. Langevin dynamics
    ratio = step / ann.num_steps
    lr = (1 + ratio * (cfg["lr_min_ratio"] - 1)) * cfg["lr"]
    tau = cfg["tau"]
    x = x0hat.clone().detach().requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr)
    for i in range(cfg["langevin_steps"]):
        optimizer.zero_grad()
        loss = ((H_op(x) - y) ** 2).flatten(1).sum(-1).sum() / (2 * tau ** 2)  # operator.error
        loss += ((x - x0hat.detach()) ** 2).sum() / (2 * sigma ** 2)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.data = x.data + np.sqrt(2 * lr) * lgvd_noise[i]
    x0y = x.detach()
    # 3. forward diffusion
    return x0y + renoise * ann.sigma_steps[step + 1], x0y, sigma, float(ann.sigma_steps[step + 1])


# ---- the cases -----------------------------------------------------------------------------

class Writer:
    def __init__(self, outdir):
        self.outdir = outdir
        self.cases = []

    def save(self, name, t):
        a = np.ascontiguousarray(t.detach().numpy().astype(np.float64))
        np.save(os.path.join(self.outdir, name + ".npy"), a)
        return name + ".npy"

    def case(self, name, solver, params, k, steps, t, tn, x, y, draws, nxt, est,
             aux=(), next_aux=(), perturb_draw=0, note=""):
        c = {"name": name, "solver": solver, "params": params, "k": k, "steps": steps,
             "t": t, "t_next": tn, "note": note,
             "x": self.save(name + "_x", x), "y": self.save(name + "_y", y),
             "aux": [self.save(f"{name}_aux{i}", a) for i, a in enumerate(aux)],
             "draws": [{"file": self.save(f"{name}_draw{i}", d), "as": kind} for i, (d, kind) in enumerate(draws)],
             "next": self.save(name + "_next", nxt), "estimate": self.save(name + "_estimate", est),
             "next_aux": [self.save(f"{name}_next_aux{i}", a) for i, a in enumerate(next_aux)],
             "perturb_draw": perturb_draw}
        self.cases.append(c)


def sample_xt(gen, t):
    """x_t from the prior's marginal at t (a typical iterate)."""
    x0 = MU + S2.sqrt() * torch.randn(B, C, H, W, generator=gen)
    a = alpha(t)
    return math.sqrt(a) * x0 + math.sqrt(1 - a) * torch.randn(B, C, H, W, generator=gen)


def measurement(gen):
    x0 = MU + S2.sqrt() * torch.randn(B, C, H, W, generator=gen)
    return H_op(x0) + SIGMA_Y * torch.randn(B, C, H // 2, W // 2, generator=gen)


def normal(gen):
    return torch.randn(B, C, H, W, generator=gen)


def sensitive(fn, draws, idx):
    """Checks that perturbing draw idx as the Go test does (+1 at flat index 1 of sample 0)
    changes the output by more than 1e-5 (10^4 times the test's tolerance), so the comparison is not vacuous."""
    base = fn(draws)
    pert = [d.clone() for d in draws]
    pert[idx].reshape(-1)[1] += 1.0
    diff = (fn(pert) - base).abs().max().item()
    assert diff > 1e-5, f"perturbing draw {idx} changes the output by only {diff}"


def svd_invariant(fn, draws, want):
    """Checks that fn's pixel-space output does not depend on the SVD's conventions: another
    valid SVD of A (the row-space basis rotated with U, as A's singular values are all equal,
    and the null-space basis rotated) gives the same output to rounding."""
    global U_, V_
    assert torch.allclose(S_, S_[0].expand_as(S_), rtol=0, atol=1e-14)
    g = torch.Generator().manual_seed(7)
    q4 = torch.linalg.qr(torch.randn(M, M, generator=g))[0]
    qn = torch.linalg.qr(torch.randn(D - M, D - M, generator=g))[0]
    saved = U_, V_
    try:
        U_ = saved[0] @ q4
        V_ = torch.cat([saved[1][:, :M] @ q4, saved[1][:, M:] @ qn], dim=1)
        assert torch.allclose(U_ @ torch.diag(S_) @ V_[:, :M].T, A, atol=1e-14)
        diff = (fn(draws) - want).abs().max().item()
    finally:
        U_, V_ = saved
    assert diff < 1e-12, f"the output depends on the SVD's conventions ({diff})"


def ddrm_cases(wr, gen):
    # Defaults of dpsflow and the official code: eta = 0.85 (etaA = etaC = args.eta), etaB = 1.
    eta, eta_b = 0.85, 1.0
    for name, steps, k, pert in [("ddrm_mid", 20, 10, 0), ("ddrm_late", 100, 98, 1)]:
        ts = stride_steps(steps)
        t, tn = loop_t(ts, k)
        xt, y = sample_xt(gen, t), measurement(gen)
        ws = [normal(gen) for _ in range(3)]

        def run(ws):
            return ddrm_step(xt, y, t, tn, ws[0], ws[1], ws[2], eta, eta_b, eta, SIGMA_Y)[0]

        nxt, est = ddrm_step(xt, y, t, tn, ws[0], ws[1], ws[2], eta, eta_b, eta, SIGMA_Y)
        sensitive(run, ws, pert)
        svd_invariant(run, ws, nxt)
        note = ("t=%d -> %d: observed coefficients noisier than y (s*sigma' > sigma_y)" % (t, tn) if name == "ddrm_mid"
                else "t=%d -> %d: observed coefficients less noisy than y (s*sigma' < sigma_y)" % (t, tn))
        wr.case(name, "ddrm", {"steps": steps, "respacing": "stride", "eta": eta, "eta_b": eta_b},
                k, steps, t, tn, xt, y,
                [(ws[0], "coef_full"), (ws[1], "coef_lead"), (ws[2], "coef_lead")],
                nxt, est, perturb_draw=pert, note=note)


def pigdm_cases(wr, gen):
    steps, k = 100, 50
    ts = stride_steps(steps)
    t, s = loop_t(ts, k)
    for name, lik, weight in [("pigdm", "noisy", "official"), ("pigdm_pinv", "pinv", "official"),
                              ("pigdm_exact", "noisy", "exact")]:
        xt, y, z = sample_xt(gen, t), measurement(gen), normal(gen)

        def run(d):
            return pgdm_step(xt, y, t, s, d[0], 1.0, 1.0, lik, weight, SIGMA_Y)[0]

        nxt, est = pgdm_step(xt, y, t, s, z, 1.0, 1.0, lik, weight, SIGMA_Y)
        sensitive(run, [z], 0)
        wr.case(name, "pigdm", {"steps": steps, "respacing": "stride", "eta": 1.0, "scale": 1.0,
                                "weight": weight, "likelihood": lik},
                k, steps, t, s, xt, y, [(z, "pixel")], nxt, est, note="t=%d -> %d" % (t, s))


def diffpir_cases(wr, gen):
    steps, k = 100, 50
    seq = quad_seq(steps)
    for name, lam, zeta in [("diffpir", 7.0, 1.0), ("diffpir_zeta", 7.0, 0.3)]:
        t = T - 1 - seq[k]
        xt, y, z = sample_xt(gen, t), measurement(gen), normal(gen)
        # One pixel of x_t pushed out so that the clipped x0 differs from Tweedie's there.
        xt[0, 0, 1, 2] = 3.0 * math.sqrt(alpha(t))

        def run(d):
            return diffpir_step(xt, y, k, seq, d[0], lam, zeta, SIGMA_Y)[0]

        nxt, est, t_i, t_im1 = diffpir_step(xt, y, k, seq, z, lam, zeta, SIGMA_Y)
        assert t_i == t
        sensitive(run, [z], 0)
        wr.case(name, "diffpir", {"steps": steps, "respacing": "quad", "lambda": lam, "zeta": zeta, "clip": True},
                k, steps, t_i, t_im1, xt, y, [(z, "pixel")], nxt, est, note="t=%d -> %d" % (t_i, t_im1))


def reddiff_cases(wr, gen):
    steps, k = 1000, 500
    ts = stride_steps(steps)
    t, _ = loop_t(ts, k)
    lr, lam, obs, b1, b2 = 0.25, 0.25, 1.0, 0.9, 0.99
    mu = MU + S2.sqrt() * torch.randn(B, C, H, W, generator=gen)
    m0 = 0.02 * torch.randn(B, C, H, W, generator=gen)
    v0 = (0.03 * torch.randn(B, C, H, W, generator=gen)) ** 2 + 1e-4
    y, z = measurement(gen), normal(gen)

    def run(d):
        return reddiff_step(mu, m0, v0, k, y, t, d[0], lr, lam, obs, b1, b2)[0]

    mu1, m1, v1 = reddiff_step(mu, m0, v0, k, y, t, z, lr, lam, obs, b1, b2)
    sensitive(run, [z], 0)
    wr.case("reddiff", "reddiff", {"steps": steps, "respacing": "stride", "lr": lr, "lambda": lam, "obs_weight": obs,
                                   "weighting": "linear", "beta1": b1, "beta2": b2, "clip": False},
            k, steps, t, -1, mu, y, [(z, "pixel")], mu1, mu1, aux=[m0, v0], next_aux=[m1, v1],
            note="t=%d, Adam step %d" % (t, k + 1))


def daps_cases(wr, gen):
    cfg = {"annealing_steps": 200, "sigma_max": 100.0, "sigma_min": 0.1, "rho": 7.0, "ode_steps": 5,
           "ode_sigma_min": 0.01, "langevin_steps": 100, "lr": 1e-4, "lr_min_ratio": 0.01, "tau": 0.01}
    k = 100
    # The official defaults, and the same with one Langevin step (which isolates that step:
    # with 100 steps the Langevin chain contracts the row space by ~0.87 per step, so an
    # error in an early step shows only as ~1e-7 at the end).
    for name, lsteps in [("daps", 100), ("daps_lgvd1", 1)]:
        c = dict(cfg, langevin_steps=lsteps)
        ann = PolyScheduler(c["annealing_steps"], c["sigma_max"], c["sigma_min"], 0.0, c["rho"], snap=True)
        sigma = float(ann.sigma_steps[k])
        x0 = MU + S2.sqrt() * torch.randn(B, C, H, W, generator=gen)
        xt = x0 + sigma * torch.randn(B, C, H, W, generator=gen)
        y = measurement(gen)
        lg = torch.randn(c["langevin_steps"], B, C, H, W, generator=gen)
        rn = normal(gen)

        def run(d):
            return daps_step(xt, y, k, c, d[:-1], d[-1])[0]

        nxt, est, s, sn = daps_step(xt, y, k, c, lg, rn)
        sensitive(run, list(lg) + [rn], 0)
        wr.case(name, "daps", c, k, c["annealing_steps"], find_nearest(REDUCED, s), find_nearest(REDUCED, sn),
                xt, y, [(lg, "pixel_stack"), (rn, "pixel")], nxt, est,
                note="sigma %.4g -> %.4g (VE), %d Langevin steps" % (s, sn, c["langevin_steps"]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: steps.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    wr = Writer(outdir)
    gen = torch.Generator().manual_seed(20240601)
    ddrm_cases(wr, gen)
    pigdm_cases(wr, gen)
    for seed, fn in [(11, diffpir_cases), (12, reddiff_cases), (13, daps_cases)]:
        fn(wr, torch.Generator().manual_seed(seed))
    meta = {"batch": B, "shape": [B, C, H, W], "sigma_y": SIGMA_Y, "beta": [1e-4, 0.02, T],
            "prior_mean": wr.save("prior_mean", MU.reshape(-1)),
            "prior_var": wr.save("prior_var", S2.reshape(-1)),
            "cases": wr.cases}
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
