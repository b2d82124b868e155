#!/usr/bin/python3
"""PyTorch twin of `dpsflow bench`: the same step on the same network, on the CPU.

    /usr/bin/python3 testdata/bench/torch_bench.py step|train --config NAME [--batch B]
        [--steps K] [--warmup W] [--threads N]
    /usr/bin/python3 testdata/bench/torch_bench.py params [--flops NAME]...

The network is guided-diffusion's UNetModel from ../adm/reference.py (imported, not
rewritten), float32, random weights (PyTorch's default initialisation), in the configs of
CONFIGS (the same as cmd/dpsflow/bench.go's benchNetworks).

  step    one DPS step as the reference does it (reference.dps_step): forward, Tweedie x̂0
          (clipped) from the reference schedule, the DDPM update, then x_{t−1} = x' −
          ∇_{x_t}‖y − A(x̂0)‖ by torch.autograd.grad, A the ×4 average pooling.
  train   one training step as dpsflow's nodes/train takes it: x_t = √ᾱ x0 + √(1−ᾱ) ε at
          random t, MSE of ε̂, backward, Adam (β 0.9/0.999, ε 1e-8, no weight decay, linear
          warmup) and the EMA of every weight.
  params  every config's number of weights, and with --flops NAME that network's forward
          FLOPs of one image counted with hooks; nothing is timed.

step and train print one JSON line: ms_per_step, ms_per_image_step (after the untimed
warm-up steps), peak_rss_mib (VmHWM), threads, torch (version), params.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "adm"))
import reference as ref  # noqa: E402

# The networks of `dpsflow bench`: adm.SmallMNISTConfig (models/mnist/model_config.yaml) and
# adm.FFHQConfig, in the reference model_config.yaml keys plus dpsflow's in_channels.
COMMON = dict(class_cond=False, use_checkpoint=False, dropout=0.0, use_fp16=False, use_new_attention_order=False)
CONFIGS = {
    "mnist-32": dict(COMMON, image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2",
                     learn_sigma=False, attention_resolutions="8", num_heads=2, num_head_channels=-1,
                     num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=True, in_channels=1),
    "ffhq-256": dict(COMMON, image_size=256, num_channels=128, num_res_blocks=1, channel_mult="",
                     learn_sigma=True, attention_resolutions="16", num_heads=4, num_head_channels=64,
                     num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=True, in_channels=3),
}

SR_FACTOR = 4
# `dpsflow train`'s defaults (cmd/dpsflow/bench.go benchTrain*).
TRAIN_LR, TRAIN_WARMUP, TRAIN_EMA = 5e-4, 100, 0.995


def build(cfg):
    """reference.create_model for RGB networks; create_model is RGB-only, so other channel
    counts build the same UNetModel with in_channels (dpsflow's in_channels key)."""
    c = dict(cfg)
    in_ch = c.pop("in_channels")
    if in_ch == 3:
        return ref.create_model(**c)
    if not c["channel_mult"]:
        raise SystemExit("torch_bench.py: a non-RGB config needs an explicit channel_mult")
    size = c["image_size"]
    return ref.UNetModel(
        in_channels=in_ch, model_channels=c["num_channels"], out_channels=in_ch * (2 if c["learn_sigma"] else 1),
        num_res_blocks=c["num_res_blocks"],
        attention_resolutions=tuple(size // int(r) for r in str(c["attention_resolutions"]).split(",")),
        dropout=c["dropout"], channel_mult=tuple(int(m) for m in c["channel_mult"].split(",")),
        num_heads=c["num_heads"], num_head_channels=c["num_head_channels"],
        num_heads_upsample=c["num_heads_upsample"], use_scale_shift_norm=c["use_scale_shift_norm"],
        resblock_updown=c["resblock_updown"], use_new_attention_order=c["use_new_attention_order"])


def avg_pool_sr(x):
    return F.avg_pool2d(x, SR_FACTOR)


def dps_step_fixed_small(model, diff, x_t, t, y, z, operator, scale):
    """reference.dps_step for networks without learn_sigma (the MNIST prior): the same step
    with the fixed-small variance (the clipped posterior variance), as dpsflow's sampler
    takes it for such networks."""
    img = x_t.clone().requires_grad_()
    time_ = torch.tensor([t] * img.shape[0])
    eps = model(img, time_)
    x0 = (ref.extract_and_expand(diff.sqrt_recip_alphas_cumprod, time_, img) * img
          - ref.extract_and_expand(diff.sqrt_recipm1_alphas_cumprod, time_, eps) * eps).clamp(-1, 1)
    mean = (ref.extract_and_expand(diff.posterior_mean_coef1, time_, img) * x0
            + ref.extract_and_expand(diff.posterior_mean_coef2, time_, img) * img)
    log_var = ref.extract_and_expand(diff.posterior_log_variance_clipped, time_, img)
    sample = mean
    if t != 0:
        sample = sample + torch.exp(0.5 * log_var) * z
    norm = torch.linalg.norm(y - operator(x0))
    grad = torch.autograd.grad(outputs=norm, inputs=img)[0]
    return (sample - grad * scale).detach(), sample.detach()


def peak_rss_mib():
    """This process's peak RSS: VmHWM, which exec resets. getrusage's ru_maxrss is the
    fallback only: Linux carries the parent's peak into it across fork and exec, so under
    `dpsflow bench --torch` it would report the Go process's peak when that is higher."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def timed(warmup, steps, one):
    """Mean ms of one(i) over the steps after the warm-up ones."""
    for i in range(warmup):
        one(i)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        one(i)
    return (time.perf_counter() - start) * 1000 / steps


def bench_step(model, cfg, batch, warmup, steps):
    diff = ref.Diffusion()
    c, size = cfg["in_channels"], cfg["image_size"]
    step = ref.dps_step if cfg["learn_sigma"] else dps_step_fixed_small
    gen = torch.Generator().manual_seed(1)
    y = avg_pool_sr(torch.rand(batch, c, size, size, generator=gen) * 2 - 1)
    # warmup + steps evenly spaced steps from T−1 down to 0, as the respaced sampler takes them
    ts = np.round(np.linspace(999, 0, warmup + steps)).astype(int)
    state = {"x": torch.randn(batch, c, size, size, generator=gen)}

    def one(i):
        z = torch.randn_like(state["x"])
        state["x"], _ = step(model, diff, state["x"], int(ts[i]), y, z, avg_pool_sr, 1.0)
    return timed(warmup, steps, one)


def bench_train(model, cfg, batch, warmup, steps):
    c, size = cfg["in_channels"], cfg["image_size"]
    alpha_bars = torch.from_numpy(ref.Diffusion().alphas_cumprod).float()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=TRAIN_LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=True)
    ema = [p.detach().clone() for p in params]
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(batch, c, size, size, generator=gen) * 2 - 1
    model.train()

    def one(i):
        t = torch.randint(0, len(alpha_bars), (batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        ab = alpha_bars[t].view(-1, 1, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = F.mse_loss(model(xt, t)[:, :c], eps)
        for g in opt.param_groups:
            g["lr"] = TRAIN_LR * min((i + 1) / TRAIN_WARMUP, 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, TRAIN_EMA)
            torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - TRAIN_EMA)
    return timed(warmup, steps, one)


def forward_flops(model, cfg):
    """Forward FLOPs of one image, counted by hooks on what runs: 2·in·out·k² per output
    position of each convolution, 2·in·out per linear layer, 4·T²·C per attention block
    (qᵀk and the weighted sum of v). Norms, activations and softmax are not counted."""
    total = [0]

    def hook(mod, inputs, out):
        if isinstance(mod, nn.Conv2d):
            total[0] += 2 * mod.in_channels * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] \
                * out.shape[2] * out.shape[3]
        elif isinstance(mod, nn.Conv1d):
            total[0] += 2 * mod.in_channels * mod.out_channels * mod.kernel_size[0] * out.shape[2]
        elif isinstance(mod, nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features
        elif isinstance(mod, ref.AttentionBlock):
            ch, positions = inputs[0].shape[1], inputs[0][0, 0].numel()
            total[0] += 4 * positions * positions * ch
    for mod in model.modules():
        mod.register_forward_hook(hook)
    size = cfg["image_size"]
    with torch.no_grad():
        model(torch.zeros(1, cfg["in_channels"], size, size), torch.tensor([0]))
    return total[0]


def skip_weight_init():
    """For `params`: the counts need no weight values, and drawing FFHQ's 93.6 M would take
    seconds; the FLOP hooks only look at shapes."""
    for cls in (nn.Conv1d, nn.Conv2d, nn.Linear):
        cls.reset_parameters = lambda self: None


def count_params(model):
    return sum(q.numel() for q in model.parameters())


def params_report(flops_for):
    """Every config's weight count, and the forward FLOPs of one image for flops_for."""
    skip_weight_init()
    out = {"mode": "params", "torch": torch.__version__, "params": {}, "flops_forward": {}}
    for name, cfg in CONFIGS.items():
        model = build(cfg)
        out["params"][name] = count_params(model)
        if name in flops_for:
            out["flops_forward"][name] = forward_flops(model, cfg)
    return out


def main():
    p = argparse.ArgumentParser(description="PyTorch twin of `dpsflow bench`")
    p.add_argument("mode", choices=["step", "train", "params"])
    p.add_argument("--config", choices=sorted(CONFIGS), help="step, train: the network")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--flops", action="append", default=[], choices=sorted(CONFIGS),
                   help="params: also count this network's forward FLOPs of one image (repeatable)")
    a = p.parse_args()
    if a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 1:
        p.error("--batch, --steps and --threads must be at least 1, --warmup at least 0")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.mode == "params":
        print(json.dumps(params_report(a.flops)))
        return
    if a.config is None:
        p.error("step and train need --config")
    cfg = CONFIGS[a.config]
    model = build(cfg)
    run = bench_step if a.mode == "step" else bench_train
    ms = run(model, cfg, a.batch, a.warmup, a.steps)
    print(json.dumps({"config": a.config, "mode": a.mode, "batch": a.batch, "steps": a.steps, "warmup": a.warmup,
                      "threads": torch.get_num_threads(), "torch": torch.__version__, "params": count_params(model),
                      "ms_per_step": ms, "ms_per_image_step": ms / a.batch,
                      "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
