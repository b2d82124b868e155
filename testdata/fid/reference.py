#!/usr/bin/env python3
"""Independent NumPy/SciPy references for nodes/metrics/fid.

usage: reference.py OUTDIR

Writes OUTDIR/reference.json with fixed random feature sets and, for each case:
  - mu, sigma: np.mean and np.cov(rowvar=False) (pytorch-fid's calculate_activation_statistics);
  - fd_pytorch_fid: pytorch-fid's calculate_frechet_distance (scipy.linalg.sqrtm of
    sigma1.dot(sigma2), the eps=1e-6 diagonal offset when that is not finite, real part,
    trace), rewritten here from its published formula;
  - fd_nuclear: the same distance with tr (Σ1Σ2)^{1/2} computed as the nuclear norm (sum of
    singular values) of Xc1 Xc2ᵀ / sqrt((n1−1)(n2−1)), with Xc the centred features: the
    nonzero eigenvalues of Σ1Σ2 are the squared singular values of that matrix, so this route
    is backward stable even when Σ1, Σ2 are singular (n < d);
  - mmd2: torch-fidelity's unbiased mmd2 with its polynomial kernel
    ((X Yᵀ)/d + 1)³ on the whole sets (what KID computes with one subset of size n).
"""
import json
import sys

import numpy as np
from scipy import linalg


def frechet_pytorch_fid(mu1, sigma1, mu2, sigma2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    offset_used = False
    if not np.isfinite(covmean).all():
        offset_used = True
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)), offset_used


def frechet_nuclear(x1, x2):
    mu1, mu2 = x1.mean(0), x2.mean(0)
    xc1, xc2 = x1 - mu1, x2 - mu2
    n1, n2 = len(x1), len(x2)
    s = np.linalg.svd(xc1 @ xc2.T, compute_uv=False)
    tr_sqrt = s.sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    tr1 = (xc1 * xc1).sum() / (n1 - 1)
    tr2 = (xc2 * xc2).sum() / (n2 - 1)
    return float(diff.dot(diff) + tr1 + tr2 - 2 * tr_sqrt)


def kernel_poly(X, Y):
    return (np.matmul(X, Y.T) / X.shape[1] + 1) ** 3


def mmd2_unbiased(X, Y):
    K_XX, K_XY, K_YY = kernel_poly(X, X), kernel_poly(X, Y), kernel_poly(Y, Y)
    m = K_XX.shape[0]
    Kt_XX_sum = (K_XX.sum(axis=1) - np.diagonal(K_XX)).sum()
    Kt_YY_sum = (K_YY.sum(axis=1) - np.diagonal(K_YY)).sum()
    K_XY_sum = K_XY.sum()
    return float((Kt_XX_sum + Kt_YY_sum) / (m * (m - 1)) - 2 * K_XY_sum / (m * m))


def main():
    out = sys.argv[1]
    rng = np.random.RandomState(20151205)
    d = 16
    cases = []
    for name, n in (("full_rank", 64), ("rank_deficient", 8)):
        # Two sets with different means and correlated, differently scaled covariances.
        a = rng.randn(n, d) @ rng.randn(d, d) * 0.5 + rng.randn(d)
        b = rng.randn(n, d) @ rng.randn(d, d) * 0.7 + rng.randn(d) * 0.3
        mu_a, mu_b = a.mean(0), b.mean(0)
        s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        fd_ref, offset_used = frechet_pytorch_fid(mu_a, s_a, mu_b, s_b)
        cases.append({
            "name": name,
            "a": a.tolist(), "b": b.tolist(),
            "mu_a": mu_a.tolist(), "sigma_a": s_a.tolist(),
            "fd_pytorch_fid": fd_ref, "eps_offset_used": offset_used,
            "fd_nuclear": frechet_nuclear(a, b),
            "mmd2": mmd2_unbiased(a, b),
        })
    with open(f"{out}/reference.json", "w") as f:
        json.dump({"cases": cases}, f)


if __name__ == "__main__":
    main()
