"""The network of xla/bench_test.go (benchUNet) in PyTorch, timed the same way:
forward + gradient of sum(y^2) w.r.t. the input, batch 1, float32, on the CPU.

Run: /usr/bin/python3 xla/testdata/bench_unet.py   (Debian's python3-torch)
Prints one line per size: "torch <size>px 32ch: <seconds> s/step".
"""
import sys
import time

import torch
import torch.nn.functional as F

torch.manual_seed(0)


def w(*dims):
    fan_in = 1
    for d in dims[1:]:
        fan_in *= d
    return torch.randn(*dims) / fan_in ** 0.5


class Net:
    def __init__(self, ch):
        self.params = {}
        self.ch = ch

    def p(self, name, *dims):
        if name not in self.params:
            self.params[name] = w(*dims)
        return self.params[name]

    def conv(self, name, x, cout, k):
        return F.conv2d(x, self.p(name, cout, x.shape[1], k, k), padding=k // 2)

    def norm(self, x):
        return F.group_norm(x, min(32, x.shape[1]), eps=1e-5)

    def res(self, name, x, cout):
        h = self.conv(name + ".c1", F.silu(self.norm(x)), cout, 3)
        h = self.conv(name + ".c2", F.silu(self.norm(h)), cout, 3)
        if x.shape[1] != cout:
            x = self.conv(name + ".skip", x, cout, 1)
        return x + h

    def attention(self, name, x):
        b, c, hh, ww = x.shape
        tok = self.norm(x).reshape(b, c, -1)
        qkv = torch.einsum("oc,bct->bot", self.p(name + ".qkv", 3 * c, c), tok)
        q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
        s = 1 / c ** 0.25
        wts = torch.softmax(torch.einsum("bct,bcs->bts", q * s, k * s), dim=-1)
        h = torch.einsum("bts,bcs->bct", wts, v)
        h = torch.einsum("oc,bct->bot", self.p(name + ".proj", c, c), h)
        return x + h.reshape(b, c, hh, ww)

    def forward(self, x):
        ch = self.ch
        down = lambda t: F.avg_pool2d(t, 2)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        h0 = self.res("r0", self.conv("in", x, ch, 3), ch)
        h1 = self.res("r1", down(h0), 2 * ch)
        h2 = self.attention("a2", self.res("r2", down(h1), 2 * ch))
        h = self.res("u1", torch.cat([up(h2), h1], 1), 2 * ch)
        h = self.res("u0", torch.cat([up(h), h0], 1), ch)
        return self.conv("out", F.silu(self.norm(h)), 3, 3)


def step(net, x):
    x = x.detach().requires_grad_(True)
    y = net.forward(x)
    loss = (y * y).sum()
    (g,) = torch.autograd.grad(loss, x)
    return g


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    for size in (32, 64):
        net = Net(32)
        x = torch.randn(1, 3, size, size)
        step(net, x)  # warm up, creates the weights
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < 3:
            step(net, x)
            n += 1
        print(f"torch {size}px 32ch: {(time.perf_counter() - t0) / n:.4f} s/step")


if __name__ == "__main__":
    main()
