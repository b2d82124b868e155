#!/usr/bin/env python3
"""Independent PyTorch reference for dpsflow's LPIPS (nodes/metrics/lpips).

Usage: reference.py OUTDIR

For each lpips backbone (alex, vgg, squeeze) this writes, into OUTDIR:

  <net>_backbone.pth  random weights in torchvision's state-dict layout (features.N.*, Fire
                      modules as features.N.{squeeze,expand1x1,expand3x3}.*), plus some
                      classifier.* keys that LPIPS does not use. alex and squeeze are saved
                      in the zip format, vgg in the legacy (pre-1.6) format;
  <net>_lin.pth       random non-negative lpips linear layers, linK.model.1.weight of shape
                      [1, C_K, 1, 1], in the legacy format as lpips' weights/v0.1/*.pth are
                      (Python 2's OrderedDict pickle, storages tagged cuda:0);

and, once:

  legacy_v1.pth       a small state dict in the PyTorch 0.3 layout (tensors rebuilt by
                      torch._utils._rebuild_tensor), with its values in legacy_v1.json;
  <case>_pred.npy, <case>_ref.npy   float32 NCHW image pairs in [-1, 1];
  meta.json           the cases, the files, and LPIPS of every pair for every net computed
                      here in float64 ("f64") and float32 ("f32").

The networks are written by hand with torch.nn from torchvision's definitions of
alexnet().features, vgg16().features and squeezenet1_1().features, and LPIPS v0.1 follows
lpips/lpips.py (ScalingLayer, the slices of lpips/pretrained_networks.py, normalize_tensor,
squared differences, NetLinLayer, spatial_average, sum over layers) with lpips=True,
spatial=False. Nothing here calls dpsflow. Needs torch and numpy only.
"""
import collections
import json
import os
import pickle
import sys

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)


# --- torchvision backbones, by hand ----------------------------------------------------

def alexnet_features():
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg16_features():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class Fire(nn.Module):
    def __init__(self, inplanes, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def squeezenet1_1_features():
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64),
        Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128),
        Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192),
        Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256),
        Fire(512, 64, 256, 256),
    )


# lpips/pretrained_networks.py: slice k is features[a:b]; lpips.py: chns.
NETS = {
    "alex": (alexnet_features, [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)], [64, 192, 384, 256, 256]),
    "vgg": (vgg16_features, [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)], [64, 128, 256, 512, 512]),
    "squeeze": (squeezenet1_1_features, [(0, 2), (2, 5), (5, 8), (8, 10), (10, 11), (11, 12), (12, 13)],
                [64, 128, 256, 384, 384, 512, 512]),
}
# torchvision's classifier shapes, written as extra keys the metric must ignore (shrunk:
# only the names matter).
EXTRA = {
    "alex": {"classifier.1.weight": (16, 9216), "classifier.1.bias": (16,)},
    "vgg": {"classifier.0.weight": (16, 25088), "classifier.6.bias": (1000,)},
    "squeeze": {"classifier.1.weight": (1000, 512, 1, 1), "classifier.1.bias": (1000,)},
}


class LPIPS(nn.Module):
    """lpips.LPIPS(net=..., version='0.1', lpips=True, spatial=False) in eval mode."""

    def __init__(self, net):
        super().__init__()
        make, slices, chns = NETS[net]
        self.features = make()
        self.slices = slices
        self.lins = nn.ModuleList([nn.Conv2d(c, 1, 1, stride=1, padding=0, bias=False) for c in chns])
        self.register_buffer("shift", torch.Tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer("scale", torch.Tensor([.458, .448, .450])[None, :, None, None])

    def taps(self, x):
        out = []
        for a, b in self.slices:
            for i in range(a, b):
                x = self.features[i](x)
            out.append(x)
        return out

    def forward(self, in0, in1):
        in0, in1 = (in0 - self.shift) / self.scale, (in1 - self.shift) / self.scale
        val = 0
        for kk, (f0, f1) in enumerate(zip(self.taps(in0), self.taps(in1))):
            f0 = f0 / (torch.sqrt(torch.sum(f0 ** 2, dim=1, keepdim=True)) + 1e-10)
            f1 = f1 / (torch.sqrt(torch.sum(f1 ** 2, dim=1, keepdim=True)) + 1e-10)
            val = val + self.lins[kk]((f0 - f1) ** 2).mean([2, 3], keepdim=True)
        return val.reshape(-1)


def random_model(net):
    m = LPIPS(net)
    with torch.no_grad():
        for mod in m.features.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0, (2.0 / fan_in) ** 0.5)  # He init keeps activations O(1)
                mod.bias.normal_(0, 0.1)
        for lin in m.lins:
            w = torch.rand_like(lin.weight) * 0.2  # non-negative, some exactly 0 like lpips'
            w[torch.rand_like(w) < 0.2] = 0
            lin.weight.copy_(w)
    return m.eval()


def write_files(outdir, net, m):
    sd = collections.OrderedDict()
    for k, v in m.features.state_dict().items():
        sd["features." + k] = v.clone()
    for k, shape in EXTRA[net].items():
        sd[k] = torch.randn(*shape) * 0.01
    legacy = net == "vgg"
    torch.save(sd, os.path.join(outdir, net + "_backbone.pth"), _use_new_zipfile_serialization=not legacy)
    lin = collections.OrderedDict(("lin%d.model.1.weight" % k, l.weight.detach().clone())
                                  for k, l in enumerate(m.lins))
    save_legacy(os.path.join(outdir, net + "_lin.pth"), lin, py2_dict=True, location="cuda:0")

    # The files must load back into torchvision-named modules exactly (strict).
    feats = NETS[net][0]()
    back = torch.load(os.path.join(outdir, net + "_backbone.pth"))
    feats.load_state_dict({k[len("features."):]: v for k, v in back.items() if k.startswith("features.")})
    for k, v in feats.state_dict().items():
        assert torch.equal(v, m.features.state_dict()[k]), k


# --- legacy torch.save files as older PyTorch and Python 2 wrote them ------------------

def save_legacy(path, state, rebuild_v1=False, py2_dict=False, location="cpu"):
    """torch.save's legacy (non-zip) layout written by hand: magic number, protocol version,
    system info, the pickle with storages as persistent ids, the sorted storage keys, then
    each storage as an int64 element count and its raw bytes. rebuild_v1 rebuilds tensors
    with torch._utils._rebuild_tensor (PyTorch < 0.4); py2_dict pickles OrderedDicts as
    Python 2 did, OrderedDict([[k, v], ...]) (lpips' weights/v0.1/*.pth); location is the
    storages' device tag (lpips' files say cuda:0)."""
    storages = {}

    class P(pickle.Pickler):
        def persistent_id(self, obj):  # as torch.serialization._legacy_save does
            if isinstance(obj, torch.storage.TypedStorage):
                key = str(obj._storage._cdata)
                storages.setdefault(key, obj)
                return ("storage", getattr(torch, obj.pickle_storage_type()), key, location, obj.size(), None)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, torch.Tensor):
                args = (obj.storage(), obj.storage_offset(), tuple(obj.size()), obj.stride())
                if rebuild_v1:
                    return (torch._utils._rebuild_tensor, args)
                return (torch._utils._rebuild_tensor_v2, args + (False, None))
            if py2_dict and type(obj) is collections.OrderedDict:
                return (collections.OrderedDict, ([[k, v] for k, v in obj.items()],))
            return NotImplemented

    with open(path, "wb") as f:
        pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump(dict(protocol_version=1001, little_endian=True,
                         type_sizes=dict(short=2, int=4, long=4)), f, protocol=2)
        P(f, protocol=2).dump(state)
        keys = sorted(storages.keys())
        pickle.dump(keys, f, protocol=2)
        f.flush()
        for k in keys:
            s = storages[k]
            s._storage._write_file(f, False, True, torch._utils._element_size(s.dtype))
    back = torch.load(path, map_location="cpu")  # PyTorch itself must read it back identically
    assert list(back.keys()) == list(state.keys())
    for k, v in state.items():
        assert torch.equal(back[k], v), k


def write_legacy_v1(path):
    """A PyTorch 0.3 style state dict with a transposed view and float64/float16 storages."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    tensors = collections.OrderedDict([
        ("a.weight", torch.randn(2, 3)),
        ("b.bias", torch.randn(5).double()),
        ("c.transposed", base.t()),  # a strided view of a 12-element storage
        ("d.half", torch.randn(4).half()),
    ])
    save_legacy(path, tensors, rebuild_v1=True)
    return {k: {"shape": list(v.shape), "values": v.double().reshape(-1).tolist()} for k, v in tensors.items()}


def min_size(m):
    """The smallest square image side PyTorch runs the net on."""
    for h in range(1, 64):
        try:
            with torch.no_grad():
                m(torch.zeros(1, 3, h, h), torch.zeros(1, 3, h, h))
            return h
        except RuntimeError:
            pass
    raise AssertionError("no size up to 63 works")


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    cases = {  # name: (n, c, h, w), nets (None: all)
        "grey32": ((2, 1, 32, 32), None),
        "rgb64": ((1, 3, 64, 64), None),
        "rgb50x42": ((2, 3, 50, 42), None),  # odd sizes: squeezenet's ceil_mode pools keep a partial window
        "rgb20x23": ((1, 3, 20, 23), ["vgg", "squeeze"]),  # squeezenet's last pool gets 2×1 < its 3×3 window
    }
    meta = {"cases": {}, "nets": {}}
    images = {}
    for name, ((n, c, h, w), nets) in cases.items():
        pred = torch.rand(n, c, h, w) * 2 - 1
        ref = (pred + 0.4 * torch.randn(n, c, h, w)).clamp(-1, 1)
        if n > 1:
            ref[-1] = torch.rand(c, h, w) * 2 - 1  # one unrelated pair
        np.save(os.path.join(outdir, name + "_pred.npy"), pred.numpy().astype(np.float32))
        np.save(os.path.join(outdir, name + "_ref.npy"), ref.numpy().astype(np.float32))
        images[name] = (pred, ref)
        meta["cases"][name] = {"shape": [n, c, h, w], "pred": name + "_pred.npy", "ref": name + "_ref.npy",
                               "nets": nets or list(NETS)}

    for net in NETS:
        m = random_model(net)
        write_files(outdir, net, m)
        entry = {"backbone": net + "_backbone.pth", "lin": net + "_lin.pth",
                 "chns": NETS[net][2], "distances": {}, "min_size": min_size(m)}
        for name, (pred, ref) in images.items():
            if net not in meta["cases"][name]["nets"]:
                continue
            if pred.shape[1] == 1:  # grey → RGB as lpips users do
                pred, ref = pred.repeat(1, 3, 1, 1), ref.repeat(1, 3, 1, 1)
            with torch.no_grad():
                d32 = m(pred, ref)
                d64 = m.double()(pred.double(), ref.double())
                m.float()
            entry["distances"][name] = {"f32": d32.tolist(), "f64": d64.tolist()}
        meta["nets"][net] = entry

    meta["legacy_v1"] = {"file": "legacy_v1.pth", "tensors": write_legacy_v1(os.path.join(outdir, "legacy_v1.pth"))}
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
