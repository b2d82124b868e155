#!/usr/bin/env python3
"""Independent PyTorch reference for nodes/metrics/inception: pytorch-fid's FID Inception-v3.

usage: reference.py OUTDIR [--f64]

Builds the FID variant of Inception-v3 by hand with torch.nn (torchvision is not needed),
following pytorch-fid's fid_inception_v3 (torchvision's Inception3 with Mixed_5b–d replaced by
FIDInceptionA, Mixed_6b–e by FIDInceptionC, Mixed_7b by FIDInceptionE_1 and Mixed_7c by
FIDInceptionE_2: average pools with count_include_pad=False, and a max pool in E_2's pool
branch) and pytorch-fid's InceptionV3 forward up to the 2048-d pool3 features (block 3:
bilinear resize to 299×299 with align_corners=False, no 2x−1 normalisation since the inputs
are already in [-1, 1], the convolutional trunk, adaptive average pooling to 1×1).

Every weight is random: He-scaled convolution kernels and random batch-norm affine parameters
and running statistics (positive variances), so the check does not depend on the real
weights. It writes to OUTDIR:
  pt_inception-2015-12-05-6726825d.pth  the state dict under pytorch-fid's key names
                                        (fc.weight/fc.bias and num_batches_tracked included,
                                        as a full Inception3 state dict has them);
  img0.npy   1×1×32×32 grey image in [-1, 1] (float32);
  img1.npy   1×3×40×48 RGB image in [-1, 1] (float32);
  feat0.npy, feat1.npy        the float32 pool3 features, 1×2048;
  feat0_f64.npy, feat1_f64.npy with --f64: the same network run in float64, which tells
                               float32 rounding from real differences (it doubles the run
                               time, so the Go test does not ask for it).
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(avg3(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """E_1 (avg pool without the padded zeros) or E_2 (max pool) depending on max_pool."""

    def __init__(self, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            bp = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            bp = avg3(x)
        bp = self.branch_pool(bp)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # in the weight file, unused for pool3 features

    def forward(self, x):
        # pytorch-fid's InceptionV3(resize_input=True, normalize_input=False), block 3.
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, "Mixed_" + name)(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return x.flatten(1)


def randomize(model, gen):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            # He scaling keeps the activations of order one through the ReLUs.
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * np.sqrt(2.0 / fan_in)
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=gen)
            m.bias.data = 0.2 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.2 * torch.randn(c, generator=gen)
            m.running_var.data = 0.5 + torch.rand(c, generator=gen)
        elif isinstance(m, nn.Linear):
            m.weight.data = 0.01 * torch.randn(m.weight.shape, generator=gen)
            m.bias.data = 0.01 * torch.randn(m.bias.shape, generator=gen)


def smooth_image(rng, c, h, w):
    """A smooth random image in [-1, 1]: low-frequency cosines plus a little noise."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    img = np.zeros((c, h, w))
    for ch in range(c):
        for _ in range(4):
            fy, fx, ph = rng.uniform(0.5, 3), rng.uniform(0.5, 3), rng.uniform(0, 2 * np.pi)
            img[ch] += rng.uniform(0.2, 0.5) * np.cos(2 * np.pi * (fy * yy + fx * xx) + ph)
        img[ch] += 0.1 * rng.randn(h, w)
    return np.clip(img, -1, 1)[None].astype(np.float32)


def main():
    out = sys.argv[1]
    f64 = "--f64" in sys.argv[2:]
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(6726825)
    model = FIDInception()
    randomize(model, gen)
    model.eval()
    torch.save(model.state_dict(), f"{out}/pt_inception-2015-12-05-6726825d.pth")
    # pytorch-fid's published file is in torch.save's legacy (pre-1.6, non-zip) format:
    # the same state dict in that format, which the Go test must read to the same weights.
    torch.save(model.state_dict(), f"{out}/pt_inception_legacy.pth", _use_new_zipfile_serialization=False)
    rng = np.random.RandomState(2015)
    imgs = [smooth_image(rng, 1, 32, 32), smooth_image(rng, 3, 40, 48)]
    if f64:
        model64 = FIDInception().double()
        model64.load_state_dict(model.state_dict())
        model64.eval()
    with torch.no_grad():
        for i, img in enumerate(imgs):
            np.save(f"{out}/img{i}.npy", img)
            f32 = model(torch.from_numpy(img)).numpy()
            np.save(f"{out}/feat{i}.npy", f32)
            msg = f"image {i} {img.shape}: features mean {f32.mean():.4g}, max {f32.max():.4g}, zeros {np.sum(f32 == 0)}"
            if f64:
                f64v = model64(torch.from_numpy(img).double()).numpy()
                np.save(f"{out}/feat{i}_f64.npy", f64v)
                msg += f", float32 vs float64 max abs {np.abs(f32 - f64v).max():.3g}"
            print(msg, file=sys.stderr)


if __name__ == "__main__":
    main()
