#!/usr/bin/python3
"""Writes the checkpoint fixtures used by github.com/dpsflow/dpsflow/nodes/checkpoint.

Run from anywhere with Debian's python3-torch (1.13; numpy is not needed):

    /usr/bin/python3 testdata/checkpoint/make_fixtures.py

It writes, next to this script:

  plain.pt          torch.save(model.state_dict()): an OrderedDict of a small
                    conv/batch-norm/linear model after one training step
                    (includes the int64 0-dim "num_batches_tracked").
  nested.pt         a training checkpoint {"epoch", "state_dict", "optimizer",
                    "config", ...} whose state dict comes from nn.DataParallel,
                    so every name starts with "module.".
  mixed.pt          a plain dict with float16 (incl. subnormals, ±0, ±inf),
                    bfloat16, float64, int32/int64/uint8/bool tensors,
                    transposed / sliced / permuted / expanded (stride 0) views,
                    three tensors sharing one storage, a 0-dim and an empty
                    tensor, an nn.Parameter, and non-tensor entries.
  ema.pt            {"ema": state_dict, "step": 10}, saved through a file
                    object so the zip's top folder is "archive/" rather than
                    the file stem.
  hand.safetensors  a safetensors file written by hand with struct + json
                    (F32, F64, F16, BF16, I32, I64, a scalar and an empty
                    tensor, "__metadata__"); data deliberately stored in
                    reverse name order and the header keys unsorted.
  legacy_plain.pt   torch.save(..., _use_new_zipfile_serialization=False), the
  legacy_nested.pt  legacy (pre-1.6, non-zip) format: a plain state dict; a
  legacy_mixed.pt   training checkpoint nesting a DataParallel state dict next to
  legacy_py2.pt     optimizer state; dtypes (float16, bfloat16, float64, int64, ...),
                    views and a shared storage; an OrderedDict pickled as Python 2
                    did. Their storage keys are memory addresses of the saving
                    process, so these four files differ byte-wise from run to run
                    (their values do not).
  expected.json     for every fixture file, every tensor the Go reader should
                    return: {"dtype", "shape", "bits" | "values"}. Floats are
                    given as IEEE bit patterns (uint32 for float32 — float16 and
                    bfloat16 are widened to float32 by torch's .float() —,
                    uint64 for float64) so the comparison is exact and NaN/inf
                    safe; integers and bools as "values".

Everything is seeded (torch.manual_seed), so the values are reproducible.
"""

import collections
import io
import json
import os
import pickle
import struct
import types

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20240601)

expected = {}


def expect(t):
    """Expected Go-side value of tensor t: dtype, shape and exact values."""
    t = t.detach().contiguous()
    shape = list(t.shape)
    n = t.numel()
    if t.dtype in (torch.float16, torch.bfloat16, torch.float32):
        flat = t.float().reshape(-1).tolist()
        bits = list(struct.unpack("<%dI" % n, struct.pack("<%df" % n, *flat)))
        return {"dtype": "float32", "shape": shape, "bits": bits}
    if t.dtype == torch.float64:
        flat = t.reshape(-1).tolist()
        bits = list(struct.unpack("<%dQ" % n, struct.pack("<%dd" % n, *flat)))
        return {"dtype": "float64", "shape": shape, "bits": bits}
    names = {torch.int64: "int64", torch.int32: "int32", torch.int16: "int16",
             torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool"}
    flat = [int(v) for v in t.reshape(-1).tolist()]
    return {"dtype": names[t.dtype], "shape": shape, "values": flat}


def expect_dict(d, strip=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor):
            name = k[len(strip):] if strip and k.startswith(strip) else k
            out[name] = expect(v)
    return out


def model_a():
    m = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    m.train()
    m(torch.randn(2, 3, 6, 6))  # updates running stats, num_batches_tracked=1
    return m


# plain.pt: a plain OrderedDict state dict.
sd = model_a().state_dict()
torch.save(sd, os.path.join(HERE, "plain.pt"))
expected["plain.pt"] = expect_dict(sd)

# nested.pt: {"state_dict": DataParallel state dict, ...}.
net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
net(torch.randn(5, 3)).square().mean().backward()
opt.step()
dp = nn.DataParallel(net)
sd = dp.state_dict()
assert all(k.startswith("module.") for k in sd)
ckpt = {
    "epoch": 7,
    "step": 1234,
    "state_dict": sd,
    "optimizer": opt.state_dict(),  # holds tensors too; must be ignored
    "config": {"lr": 1e-3, "betas": (0.9, 0.999), "name": "tiny"},
    "best_loss": float("nan"),
}
torch.save(ckpt, os.path.join(HERE, "nested.pt"))
expected["nested.pt"] = expect_dict(sd, strip="module.")

# mixed.pt: dtypes, views, shared storage.
half_special = torch.tensor(
    [0.0, -0.0, 1.0, -2.5, 65504.0, 2.0 ** -14, 2.0 ** -24, 3e-6,
     float("inf"), float("-inf"), 0.1, 1.0 / 3.0], dtype=torch.float16).reshape(3, 4)
bf16 = torch.randn(3, 5).bfloat16()
bf16[0, 0] = 1e-39  # a bfloat16 subnormal
base = torch.randn(5, 7)
shared = torch.randn(3, 4)
mixed = {
    "half": half_special,
    "half_rand": torch.randn(4, 5).half(),
    "half_t": torch.randn(3, 4).half().t(),
    "bf16": bf16,
    "double": torch.randn(2, 3, dtype=torch.float64),
    "transposed": torch.randn(4, 6).t(),
    "sliced": base[1:4, 2:6:2],
    "permuted": torch.randn(2, 3, 4).permute(2, 0, 1),
    "expanded": torch.randn(3, 1).expand(3, 4),
    "shared_a": shared,
    "shared_b": shared[1],
    "shared_c": shared.view(12)[2:10:3],
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
    "int32": (torch.arange(6, dtype=torch.int32) - 3).reshape(2, 3),
    "int64": torch.tensor([-(2 ** 40), 0, 2 ** 40 + 5]),
    "uint8": torch.tensor([0, 255, 7], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "param": nn.Parameter(torch.randn(2, 2)),
    "note": "not a tensor",
    "count": 3,
    "dtype_obj": torch.float16,
    "size_obj": torch.Size([2, 3]),
    "nested_list": [1, 2, {"x": (3, 4)}],
}
assert not mixed["transposed"].is_contiguous()
assert mixed["sliced"].storage_offset() == 9
assert mixed["expanded"].stride() == (1, 0)
assert mixed["shared_b"].storage().data_ptr() == shared.storage().data_ptr()
torch.save(mixed, os.path.join(HERE, "mixed.pt"))
expected["mixed.pt"] = expect_dict(mixed)

# ema.pt: nested under "ema", zip top folder "archive" (file-object save).
ema_sd = nn.Linear(3, 2).state_dict()
buf = io.BytesIO()
torch.save({"ema": ema_sd, "step": 10}, buf)
with open(os.path.join(HERE, "ema.pt"), "wb") as f:
    f.write(buf.getvalue())
expected["ema.pt"] = expect_dict(ema_sd)


# hand.safetensors: written by hand.
def f16_bytes(t):
    flat = t.float().reshape(-1).tolist()
    return struct.pack("<%de" % len(flat), *flat)  # exact: t is already float16


def bf16_bytes(t):
    flat = t.float().reshape(-1).tolist()  # exact: t is already bfloat16
    raw = struct.pack("<%df" % len(flat), *flat)
    return b"".join(raw[i + 2:i + 4] for i in range(0, len(raw), 4))


def le_bytes(t, fmt):
    flat = t.reshape(-1).tolist()
    return struct.pack("<%d%s" % (len(flat), fmt), *flat)


st = collections.OrderedDict()
st["weight"] = ("F32", torch.randn(3, 4))
st["double"] = ("F64", torch.randn(2, 2, dtype=torch.float64))
st["half"] = ("F16", torch.tensor([1.0, -0.0, 2.0 ** -24, 65504.0, float("-inf")],
                                  dtype=torch.float16))
st["brain"] = ("BF16", torch.randn(2, 3).bfloat16())
st["ids"] = ("I32", torch.tensor([7, -1, 0, 2 ** 31 - 1], dtype=torch.int32))
st["big"] = ("I64", torch.tensor([-(2 ** 62), 42]))
st["scalar"] = ("F32", torch.tensor(-1.25))
st["empty"] = ("F32", torch.zeros(0, 2))

blobs = {}
for name, (dt, t) in st.items():
    if dt == "F16":
        blobs[name] = f16_bytes(t)
    elif dt == "BF16":
        blobs[name] = bf16_bytes(t)
    else:
        blobs[name] = le_bytes(t, {"F32": "f", "F64": "d", "I32": "i", "I64": "q"}[dt])

header = collections.OrderedDict()
data = b""
for name in sorted(st, reverse=True):  # data in reverse name order
    begin = len(data)
    data += blobs[name]
    header[name] = {"dtype": st[name][0], "shape": list(st[name][1].shape),
                    "data_offsets": [begin, len(data)]}
header["__metadata__"] = {"format": "pt", "source": "make_fixtures.py"}
hjson = json.dumps(header, separators=(",", ":")).encode()
hjson += b" " * (-len(hjson) % 8)
with open(os.path.join(HERE, "hand.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hjson)) + hjson + data)
expected["hand.safetensors"] = {n: expect(t) for n, (_, t) in st.items()}



# legacy_*.pt: torch.save's legacy (pre-1.6, non-zip) format, as torchvision's and
# pytorch-fid's published weights are stored. Written after everything above so that the
# random values of the other fixtures do not change.
def save_legacy(obj, name, **kw):
    torch.save(obj, os.path.join(HERE, name), _use_new_zipfile_serialization=False, **kw)


# legacy_plain.pt: a plain OrderedDict state dict (int64 num_batches_tracked included).
sd = model_a().state_dict()
save_legacy(sd, "legacy_plain.pt")
expected["legacy_plain.pt"] = expect_dict(sd)

# legacy_nested.pt: {"state_dict": DataParallel state dict, "optimizer": ...}; the
# optimizer's storages lie between the state dict's and must be stepped over.
net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
net(torch.randn(5, 3)).square().mean().backward()
opt.step()
sd = nn.DataParallel(net).state_dict()
save_legacy({"epoch": 3, "state_dict": sd, "optimizer": opt.state_dict(), "note": "legacy"},
            "legacy_nested.pt")
expected["legacy_nested.pt"] = expect_dict(sd, strip="module.")

# legacy_mixed.pt: dtypes, views, shared storage.
shared = torch.randn(3, 4)
base = torch.randn(5, 7)
lmixed = {
    "half": half_special.clone(),
    "half_t": torch.randn(3, 4).half().t(),
    "bf16": torch.randn(2, 3).bfloat16(),
    "double": torch.randn(2, 3, dtype=torch.float64),
    "double_t": torch.randn(3, 2, dtype=torch.float64).t(),
    "transposed": torch.randn(4, 6).t(),
    "sliced": base[1:4, 2:6:2],
    "expanded": torch.randn(3, 1).expand(3, 4),
    "shared_a": shared,
    "shared_b": shared[1],
    "shared_c": shared.view(12)[2:10:3],
    "scalar": torch.tensor(-0.75),
    "empty": torch.zeros(0, 3),
    "int64": torch.tensor([-(2 ** 40), 0, 2 ** 40 + 5]),
    "int64_t": torch.arange(6).reshape(2, 3).t(),
    "int32": (torch.arange(6, dtype=torch.int32) - 3).reshape(2, 3),
    "uint8": torch.tensor([0, 255, 7], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "param": nn.Parameter(torch.randn(2, 2)),
    "note": "not a tensor",
    "count": 3,
}
assert not lmixed["transposed"].is_contiguous()
assert lmixed["shared_b"].storage().data_ptr() == shared.storage().data_ptr()
save_legacy(lmixed, "legacy_mixed.pt")
expected["legacy_mixed.pt"] = expect_dict(lmixed)


# legacy_py2.pt: an OrderedDict pickled as Python 2 did, OrderedDict([[k, v], ...]), as in
# the lpips package's weights/v0.1/*.pth (Python 3 pickles OrderedDict() + SETITEMS).
class Py2Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if type(obj) is collections.OrderedDict:
            return (collections.OrderedDict, ([[k, v] for k, v in obj.items()],))
        return NotImplemented


sd = nn.Linear(4, 3).state_dict()
save_legacy(sd, "legacy_py2.pt", pickle_module=types.SimpleNamespace(
    __name__="py2pickle", dump=pickle.dump, Pickler=Py2Pickler))
with open(os.path.join(HERE, "legacy_py2.pt"), "rb") as f:
    assert b"ccollections\nOrderedDict\n" in f.read()
expected["legacy_py2.pt"] = expect_dict(sd)

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
