"""Independent PyTorch forward of dpsflow's MNIST classifier (nodes/metrics/mnistnet).

Usage: reference.py OUTDIR MODEL.safetensors IMAGES.npy

Reads the float32 weights from the safetensors file with a tiny parser (8-byte little-endian
header length, JSON header, raw little-endian data), builds the network from torch.nn modules
(Conv2d 3x3 padding 1 + ReLU + MaxPool2d(2), three times; flatten; Linear 1024->128 + ReLU;
Linear 128->10), runs it in float64 on IMAGES ([N, 1, 32, 32] float32 in [-1, 1]) and writes
OUTDIR/features.npy ([N, 128], the ReLU output of fc1) and OUTDIR/logits.npy ([N, 10]), float64.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {entry['dtype']}, want F32")
        lo, hi = entry["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[lo:hi], dtype="<f4").reshape(entry["shape"]).copy())
    return out


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            x = self.pool(self.relu(conv(x)))
        features = self.relu(self.fc1(torch.flatten(x, 1)))
        return features, self.fc2(features)


def main():
    outdir, model_path, images_path = sys.argv[1:4]
    net = Net().double()
    state = {k: v.double() for k, v in read_safetensors(model_path).items()}
    net.load_state_dict(state, strict=True)
    x = torch.from_numpy(np.load(images_path).astype(np.float64))
    with torch.no_grad():
        features, logits = net(x)
    os.makedirs(outdir, exist_ok=True)
    np.save(os.path.join(outdir, "features.npy"), features.numpy())
    np.save(os.path.join(outdir, "logits.npy"), logits.numpy())


if __name__ == "__main__":
    main()
