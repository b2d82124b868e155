#!/usr/bin/python3
"""Independent PyTorch reference for dpsflow's ADM UNet and its DPS step.

    /usr/bin/python3 testdata/adm/reference.py OUTDIR CONFIG [--f64]

Self-contained (torch and numpy only; no scipy, no yaml, no guided-diffusion checkout):
the UNet below is guided-diffusion's UNetModel (guided_diffusion/unet.py) as the DPS
reference code builds it with create_model, and dps_step is one iteration of the
reference's DDPM loop with PosteriorSampling ("ps") conditioning, both written out from
guided-diffusion / DPS semantics, not from dpsflow's Go code.

CONFIG is one of the names in CONFIGS. OUTDIR receives

  model.pt            torch.save(state_dict): every weight random, including the layers
                      guided-diffusion zero-initialises (zero_module), and the GroupNorm
                      affine parameters, so that every path through the network counts.
  model_config.yaml   the reference model_config.yaml for that network.
  x.npy, t.npy        eval input [N, 3, H, W] float32 and its steps [N] (float32).
  eval_out.npy        model(x, t): [N, 3 or 6, H, W] float32.
and, for configs with a DPS step (learn_sigma models only, as in the reference):
  task.yaml           the reference task config (gaussian_deblur / random inpainting).
  xt.npy, y.npy, z.npy  x_t, the measurement and the ancestral noise, float32.
  mask.npy            [1, 1, H, W] inpainting mask (1 = observed), inpainting only.
  step_out.npy        x_{t-1} from one reference DPS step at meta.json's step_t.
  step_prior.npy      x' of that step, before the guidance term is subtracted.
  meta.json           {"config", "operator", "step_t", "scale"}.
With --f64 the same computations are also run in float64 (eval_out_f64.npy,
step_out_f64.npy, step_prior_f64.npy) to tell float32 rounding from real differences.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# guided-diffusion's UNet (unet.py, nn.py)
# ---------------------------------------------------------------------------------------


def f32(x):
    """x.float() as guided-diffusion writes it; kept float64 for the --f64 diagnostic run."""
    return x if x.dtype == torch.float64 else x.float()


class GroupNorm32(nn.GroupNorm):
    def forward(self, x):
        return super().forward(f32(x)).type(x.dtype)


def normalization(channels):
    return GroupNorm32(32, channels)


def conv_nd(dims, *args, **kwargs):
    if dims == 1:
        return nn.Conv1d(*args, **kwargs)
    if dims == 2:
        return nn.Conv2d(*args, **kwargs)
    raise ValueError(dims)


def zero_module(module):
    for p in module.parameters():
        p.detach().zero_()
    return module


def timestep_embedding(timesteps, dim, max_period=10000, dtype=torch.float32):
    # dtype is float32 in guided-diffusion; float64 only for the --f64 diagnostic run.
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=dtype) / half)
    args = timesteps[:, None].to(dtype) * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedSequential(nn.Sequential):
    def forward(self, x, emb):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            else:
                x = layer(x)
        return x


class Upsample(nn.Module):
    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = conv_nd(2, channels, out_channels or channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.use_conv:
            x = self.conv(x)
        return x


class Downsample(nn.Module):
    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        if use_conv:
            self.op = conv_nd(2, channels, out_channels or channels, 3, stride=2, padding=1)
        else:
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x):
        return self.op(x)


class ResBlock(nn.Module):
    def __init__(self, channels, emb_channels, dropout, out_channels=None, use_scale_shift_norm=False,
                 up=False, down=False):
        super().__init__()
        self.out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(normalization(channels), nn.SiLU(),
                                       conv_nd(2, channels, self.out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels))
        self.out_layers = nn.Sequential(
            normalization(self.out_channels), nn.SiLU(), nn.Dropout(p=dropout),
            zero_module(conv_nd(2, self.out_channels, self.out_channels, 3, padding=1)))
        if self.out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = conv_nd(2, channels, self.out_channels, 1)

    def forward(self, x, emb):
        if self.updown:
            in_rest, in_conv = self.in_layers[:-1], self.in_layers[-1]
            h = in_rest(x)
            h = self.h_upd(h)
            x = self.x_upd(x)
            h = in_conv(h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)
        while len(emb_out.shape) < len(h.shape):
            emb_out = emb_out[..., None]
        if self.use_scale_shift_norm:
            out_norm, out_rest = self.out_layers[0], self.out_layers[1:]
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = out_norm(h) * (1 + scale) + shift
            h = out_rest(h)
        else:
            h = h + emb_out
            h = self.out_layers(h)
        return self.skip_connection(x) + h


class QKVAttentionLegacy(nn.Module):
    """Heads first: [N, H*3*C, T] viewed as [N*H, 3*C, T], then q, k, v."""

    def __init__(self, n_heads):
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv):
        bs, width, length = qkv.shape
        assert width % (3 * self.n_heads) == 0
        ch = width // (3 * self.n_heads)
        q, k, v = qkv.reshape(bs * self.n_heads, ch * 3, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(f32(weight), dim=-1).type(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v)
        return a.reshape(bs, -1, length)


class QKVAttention(nn.Module):
    """New order: q, k, v first ([N, 3*H*C, T] chunked), then heads."""

    def __init__(self, n_heads):
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv):
        bs, width, length = qkv.shape
        assert width % (3 * self.n_heads) == 0
        ch = width // (3 * self.n_heads)
        q, k, v = qkv.chunk(3, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", (q * scale).view(bs * self.n_heads, ch, length),
                              (k * scale).view(bs * self.n_heads, ch, length))
        weight = torch.softmax(f32(weight), dim=-1).type(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v.reshape(bs * self.n_heads, ch, length))
        return a.reshape(bs, -1, length)


class AttentionBlock(nn.Module):
    def __init__(self, channels, num_heads=1, num_head_channels=-1, use_new_attention_order=False):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            assert channels % num_head_channels == 0
            self.num_heads = channels // num_head_channels
        self.norm = normalization(channels)
        self.qkv = conv_nd(1, channels, channels * 3, 1)
        self.attention = QKVAttention(self.num_heads) if use_new_attention_order else QKVAttentionLegacy(self.num_heads)
        self.proj_out = zero_module(conv_nd(1, channels, channels, 1))

    def forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        h = self.attention(qkv)
        h = self.proj_out(h)
        return (x + h).reshape(b, c, *spatial)


class UNetModel(nn.Module):
    def __init__(self, in_channels, model_channels, out_channels, num_res_blocks, attention_resolutions,
                 dropout=0, channel_mult=(1, 2, 4, 8), conv_resample=True, num_heads=1, num_head_channels=-1,
                 num_heads_upsample=-1, use_scale_shift_norm=False, resblock_updown=False,
                 use_new_attention_order=False):
        super().__init__()
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        self.model_channels = model_channels
        time_embed_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, time_embed_dim), nn.SiLU(),
                                        nn.Linear(time_embed_dim, time_embed_dim))
        ch = input_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(conv_nd(2, in_channels, ch, 3, padding=1))])
        input_block_chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, time_embed_dim, dropout, out_channels=int(mult * model_channels),
                                   use_scale_shift_norm=use_scale_shift_norm)]
                ch = int(mult * model_channels)
                if ds in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_heads=num_heads, num_head_channels=num_head_channels,
                                                 use_new_attention_order=use_new_attention_order))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                input_block_chans.append(ch)
            if level != len(channel_mult) - 1:
                out_ch = ch
                self.input_blocks.append(TimestepEmbedSequential(
                    ResBlock(ch, time_embed_dim, dropout, out_channels=out_ch,
                             use_scale_shift_norm=use_scale_shift_norm, down=True)
                    if resblock_updown else Downsample(ch, conv_resample, out_channels=out_ch)))
                ch = out_ch
                input_block_chans.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(
            ResBlock(ch, time_embed_dim, dropout, use_scale_shift_norm=use_scale_shift_norm),
            AttentionBlock(ch, num_heads=num_heads, num_head_channels=num_head_channels,
                           use_new_attention_order=use_new_attention_order),
            ResBlock(ch, time_embed_dim, dropout, use_scale_shift_norm=use_scale_shift_norm))
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                ich = input_block_chans.pop()
                layers = [ResBlock(ch + ich, time_embed_dim, dropout, out_channels=int(model_channels * mult),
                                   use_scale_shift_norm=use_scale_shift_norm)]
                ch = int(model_channels * mult)
                if ds in attention_resolutions:
                    layers.append(AttentionBlock(ch, num_heads=num_heads_upsample, num_head_channels=num_head_channels,
                                                 use_new_attention_order=use_new_attention_order))
                if level and i == num_res_blocks:
                    out_ch = ch
                    layers.append(ResBlock(ch, time_embed_dim, dropout, out_channels=out_ch,
                                           use_scale_shift_norm=use_scale_shift_norm, up=True)
                                  if resblock_updown else Upsample(ch, conv_resample, out_channels=out_ch))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(normalization(ch), nn.SiLU(),
                                 zero_module(conv_nd(2, input_ch, out_channels, 3, padding=1)))

    def forward(self, x, timesteps):
        hs = []
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels, dtype=dt).type(x.dtype))
        h = x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = torch.cat([h, hs.pop()], dim=1)
            h = module(h, emb)
        return self.out(h)


def create_model(image_size, num_channels, num_res_blocks, channel_mult="", learn_sigma=False, class_cond=False,
                 use_checkpoint=False, attention_resolutions="16", num_heads=1, num_head_channels=-1,
                 num_heads_upsample=-1, use_scale_shift_norm=False, dropout=0, resblock_updown=False,
                 use_fp16=False, use_new_attention_order=False, model_path=""):
    """The reference's guided_diffusion.unet.create_model (minus the checkpoint loading)."""
    if channel_mult == "":
        channel_mult = {256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}[image_size]
    else:
        channel_mult = tuple(int(m) for m in channel_mult.split(","))
    attention_ds = [image_size // int(res) for res in str(attention_resolutions).split(",")]
    return UNetModel(in_channels=3, model_channels=num_channels, out_channels=(6 if learn_sigma else 3),
                     num_res_blocks=num_res_blocks, attention_resolutions=tuple(attention_ds), dropout=dropout,
                     channel_mult=channel_mult, num_heads=num_heads, num_head_channels=num_head_channels,
                     num_heads_upsample=num_heads_upsample, use_scale_shift_norm=use_scale_shift_norm,
                     resblock_updown=resblock_updown, use_new_attention_order=use_new_attention_order)


# ---------------------------------------------------------------------------------------
# The reference diffusion (gaussian_diffusion.py of the DPS code) and its DPS step
# ---------------------------------------------------------------------------------------


class Diffusion:
    """linear β 1e-4…0.02, T = 1000, respaced to "1000" steps as the reference's
    SpacedDiffusion does (β recomputed as 1 − ᾱ_t/ᾱ_{t−1}); all tables float64 numpy."""

    def __init__(self):
        base = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
        last, betas = 1.0, []
        for ac in np.cumprod(1.0 - base, axis=0):
            betas.append(1 - ac / last)
            last = ac
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        alphas = 1.0 - b
        ac = np.cumprod(alphas, axis=0)
        acp = np.append(1.0, ac[:-1])
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ac - 1)
        pv = b * (1.0 - acp) / (1.0 - ac)
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:]))
        self.posterior_mean_coef1 = b * np.sqrt(acp) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - acp) * np.sqrt(alphas) / (1.0 - ac)
        self.alphas_cumprod = ac


def extract_and_expand(array, time, target):
    # The reference: torch.from_numpy(array)[time].float(), broadcast to target. (For a
    # float64 run we keep float64 instead of .float().)
    a = torch.from_numpy(array)[time].to(target.dtype)
    while a.ndim < target.ndim:
        a = a.unsqueeze(-1)
    return a.expand_as(target)


def dps_step(model, diff, x_t, t, y, z, operator, scale):
    """One reference DDPM step (p_sample with learned-range variance, clipped x̂0) followed
    by PosteriorSampling.conditioning: x_{t−1} = x' − scale·∇_{x_t} ‖y − A(x̂0)‖, the norm
    over the whole tensor (batch included). The same t for every sample, as the reference
    loop does; z is the ancestral noise (torch.randn_like in the reference). Returns
    x_{t−1} and x'."""
    img = x_t.clone().requires_grad_()
    time = torch.tensor([t] * img.shape[0])
    out = model(img, time)
    C = img.shape[1]
    assert out.shape[1] == 2 * C, "the reference's learned_range variance needs a learn_sigma model"
    eps, var_values = torch.split(out, C, dim=1)
    x0 = (extract_and_expand(diff.sqrt_recip_alphas_cumprod, time, img) * img
          - extract_and_expand(diff.sqrt_recipm1_alphas_cumprod, time, eps) * eps).clamp(-1, 1)
    mean = (extract_and_expand(diff.posterior_mean_coef1, time, img) * x0
            + extract_and_expand(diff.posterior_mean_coef2, time, img) * img)
    min_log = extract_and_expand(diff.posterior_log_variance_clipped, time, var_values)
    max_log = extract_and_expand(np.log(diff.betas), time, var_values)
    frac = (var_values + 1) / 2
    log_var = frac * max_log + (1 - frac) * min_log
    sample = mean
    if t != 0:
        sample = sample + torch.exp(0.5 * log_var) * z
    difference = y - operator(x0)
    norm = torch.linalg.norm(difference)
    grad = torch.autograd.grad(outputs=norm, inputs=img)[0]
    return (sample - grad * scale).detach(), sample.detach()


def gaussian_kernel(kernel_size=61, std=3.0):
    """The reference Blurkernel('gaussian'): scipy.ndimage.gaussian_filter of a centred delta
    (truncate 4.0). The delta lies ≥ radius from every edge, so that is the outer product
    of scipy's 1-D kernel exp(−x²/2σ²) over |x| ≤ int(4σ + 0.5), normalised; zero elsewhere."""
    radius = int(4.0 * std + 0.5)
    xs = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / std ** 2 * xs ** 2)
    phi /= phi.sum()
    k = np.zeros((kernel_size, kernel_size), dtype=np.float64)
    c = kernel_size // 2
    k[c - radius:c + radius + 1, c - radius:c + radius + 1] = np.outer(phi, phi)
    return torch.from_numpy(k).type(torch.float32)  # Blurkernel keeps it as float32 weights


def gaussian_blur(kernel):
    """GaussialBlurOperator.forward: ReflectionPad2d(k//2), then Conv2d(3, 3, k, groups=3)."""
    ks = kernel.shape[0]

    def apply(x):
        w = kernel.to(x.dtype)[None, None].expand(x.shape[1], 1, ks, ks)
        return F.conv2d(F.pad(x, (ks // 2,) * 4, mode="reflect"), w, groups=x.shape[1])
    return apply


# ---------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------

BASE = dict(learn_sigma=False, class_cond=False, use_checkpoint=False, num_heads=1, num_head_channels=-1,
            num_heads_upsample=-1, use_scale_shift_norm=False, dropout=0.0, resblock_updown=False, use_fp16=False,
            use_new_attention_order=False)

CONFIGS = {
    # Res-block heavy: 2 res-blocks a level, conv resampling (Downsample "op" stride 2,
    # Upsample "conv"), 1×1 skip convs, plain emb add (no scale-shift), 3 outputs.
    # attention_resolutions "2" is never reached (ds ≤ 2): attention only in the middle.
    "resnet": dict(model=dict(BASE, image_size=16, num_channels=32, num_res_blocks=2, channel_mult="1,2",
                              attention_resolutions="2", num_heads=2),
                   eval_t=[0, 999]),
    # Legacy attention at 8×8 and 4×4 with 4 heads of 16, learned sigma, scale-shift,
    # res-block up/down; DPS step with a random inpainting mask.
    "legacy_inpaint": dict(model=dict(BASE, image_size=16, num_channels=64, num_res_blocks=1, channel_mult="1,2,2",
                                      attention_resolutions="8,4", num_heads=4, learn_sigma=True,
                                      use_scale_shift_norm=True, resblock_updown=True),
                           eval_t=[3, 500, 998], step=dict(operator="inpainting", t=120, batch=2)),
    # New attention order at 16×16 and 8×8, heads of 32 channels (num_head_channels),
    # learned sigma, scale-shift, conv resampling; DPS step with the 61×61 Gaussian blur.
    "new_blur": dict(model=dict(BASE, image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2",
                                attention_resolutions="16,8", num_heads=4, num_head_channels=32, learn_sigma=True,
                                use_scale_shift_norm=True, use_new_attention_order=True),
                     eval_t=[1, 777], step=dict(operator="gaussian_blur", t=60, batch=1)),
    # FFHQ-like: legacy order with num_head_channels, res-block up/down, plain emb add,
    # learned sigma; Gaussian blur step at t = 0 (no ancestral noise), batch 2.
    "legacy_blur_t0": dict(model=dict(BASE, image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,1,2",
                                      attention_resolutions="8", num_heads=4, num_head_channels=32, learn_sigma=True,
                                      resblock_updown=True),
                           eval_t=[250, 0], step=dict(operator="gaussian_blur", t=0, batch=2)),
    # channel_mult "" (guided-diffusion's default for 64 px: 1,2,3,4), new attention order
    # at 16×16 and 8×8 with num_heads 4 down / num_heads_upsample 2 up, res-block up/down,
    # scale-shift, 3 outputs.
    "new_default_mult": dict(model=dict(BASE, image_size=64, num_channels=32, num_res_blocks=1, channel_mult="",
                                        attention_resolutions="16,8", num_heads=4, num_heads_upsample=2,
                                        use_scale_shift_norm=True, resblock_updown=True,
                                        use_new_attention_order=True),
                             eval_t=[999, 1]),
}

TASKS = {
    # The reference's configs/gaussian_deblur_config.yaml.
    "gaussian_blur": ("""conditioning:
  method: ps
  params:
    scale: 0.3

data:
  name: ffhq
  root: ./data/samples/

measurement:
  operator:
    name: gaussian_blur
    kernel_size: 61
    intensity: 3.0

  noise:
    name: gaussian
    sigma: 0.05
""", 0.3),
    # The reference's configs/inpainting_config.yaml with the random mask (image_size set
    # to the test's); the mask itself is given to dpsflow step with --mask.
    "inpainting": ("""conditioning:
  method: ps
  params:
    scale: 0.5

data:
  name: ffhq
  root: ./data/samples/

measurement:
  operator:
    name: inpainting
  mask_opt:
    mask_type: random
    mask_prob_range: !!python/tuple [0.3, 0.7]  # for random
    image_size: {size}

  noise:
    name: gaussian
    sigma: 0.05
""", 0.5),
}


def model_yaml(m):
    def val(v):
        if isinstance(v, bool):
            return "True" if v else "False"
        if isinstance(v, str):
            return '"%s"' % v
        return str(v)
    keys = ["image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "class_cond",
            "use_checkpoint", "attention_resolutions", "num_heads", "num_head_channels", "num_heads_upsample",
            "use_scale_shift_norm", "dropout", "resblock_updown", "use_fp16", "use_new_attention_order"]
    lines = ["%s: %s" % (k, val(m[k])) for k in keys]
    return "\n".join(lines) + "\n\nmodel_path: models/model.pt\n"


def randomise(model, gen):
    """Every weight random: convolutions and linear layers (zero_module ones too) uniform
    ±1/√fan_in like PyTorch's default, GroupNorm weight 1 + 0.25·N(0,1), bias 0.25·N(0,1)."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.GroupNorm):
                mod.weight.copy_(1 + 0.25 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.25 * torch.randn(mod.bias.shape, generator=gen))
            elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                mod.weight.copy_((torch.rand(mod.weight.shape, generator=gen) * 2 - 1) * bound)
                mod.bias.copy_((torch.rand(mod.bias.shape, generator=gen) * 2 - 1) * bound)


def smooth_image(gen, n, size):
    """Images in (−0.9, 0.9) with structure at several scales."""
    low = torch.randn(n, 3, max(size // 4, 1), max(size // 4, 1), generator=gen)
    up = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return 0.9 * torch.tanh(up + 0.3 * torch.randn(n, 3, size, size, generator=gen))


def save(outdir, name, a):
    np.save(os.path.join(outdir, name), np.ascontiguousarray(a.detach().numpy().astype(np.float32)))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    f64 = "--f64" in sys.argv[1:]
    if len(args) != 2 or args[1] not in CONFIGS:
        sys.exit("usage: reference.py OUTDIR CONFIG [--f64]; CONFIG one of " + ", ".join(CONFIGS))
    outdir, name = args
    spec = CONFIGS[name]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(sum(map(ord, name)))

    m = spec["model"]
    model = create_model(**m)
    randomise(model, gen)
    model.eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(outdir, "model.pt"))
    with open(os.path.join(outdir, "model_config.yaml"), "w") as f:
        f.write(model_yaml(m))

    size = m["image_size"]
    ts = spec["eval_t"]
    x = torch.randn(len(ts), 3, size, size, generator=gen)
    t = torch.tensor(ts, dtype=torch.int64)
    save(outdir, "x.npy", x)
    save(outdir, "t.npy", t.float())
    with torch.no_grad():
        save(outdir, "eval_out.npy", model(x, t))
        if f64:
            save(outdir, "eval_out_f64.npy", model.double()(x.double(), t).float())
            model.float()

    meta = {"config": name}
    step = spec.get("step")
    if step:
        diff = Diffusion()
        b, st, opname = step["batch"], step["t"], step["operator"]
        text, scale = TASKS[opname]
        with open(os.path.join(outdir, "task.yaml"), "w") as f:
            f.write(text.replace("{size}", str(size)))
        x0 = smooth_image(gen, b, size)
        ab = float(diff.alphas_cumprod[st])
        xt = math.sqrt(ab) * smooth_image(gen, b, size) + math.sqrt(1 - ab) * torch.randn(b, 3, size, size, generator=gen)
        z = torch.randn(b, 3, size, size, generator=gen)
        if opname == "inpainting":
            keep = torch.rand(size, size, generator=gen) >= 0.5  # drop half, as mask_prob_range does
            mask = keep.float()[None, None]
            save(outdir, "mask.npy", mask)

            def make_op(dtype):
                return lambda v: v * mask.to(dtype)
        else:
            kernel = gaussian_kernel(61, 3.0)

            def make_op(dtype):
                return gaussian_blur(kernel)
        op = make_op(torch.float32)
        y = op(x0) + 0.05 * torch.randn(b, 3, size, size, generator=gen)
        for n_, a in [("xt.npy", xt), ("y.npy", y), ("z.npy", z)]:
            save(outdir, n_, a)
        out, prior = dps_step(model, diff, xt, st, y, z, op, scale)
        save(outdir, "step_out.npy", out)
        save(outdir, "step_prior.npy", prior)
        if f64:
            out, prior = dps_step(model.double(), diff, xt.double(), st, y.double(), z.double(),
                                  make_op(torch.float64), scale)
            save(outdir, "step_out_f64.npy", out)
            save(outdir, "step_prior_f64.npy", prior)
        meta.update(operator=opname, step_t=st, scale=scale)
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
