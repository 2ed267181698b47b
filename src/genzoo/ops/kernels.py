"""Kernel maximum mean discrepancy (Gretton, Borgwardt, Rasch, Schoelkopf & Smola 2012, "A
kernel two-sample test", JMLR 13) with a mixture of Gaussian kernels
k(a, b) = sum_s exp(-|a - b|^2 / (2 sigma_s^2)): the statistic that GMMNs train on and that
:mod:`genzoo.evaluation.mmd` tests with. **Each entry of ``sigmas`` is a standard deviation
sigma (the kernel divides by 2 sigma^2).** Li, Swersky & Zemel (2015) write their GMMN kernel
as exp(-|a - b|^2 / (2 s)), so their s is our sigma^2: pass ``sigmas = sqrt(s)``.

For x (n, D) and y (m, D), lemma 6 (biased, a V-statistic, always >= 0) and eq. (3)
(unbiased, a U-statistic, zero in expectation when both samples share a distribution, may be
negative)::

    MMD_b^2 = 1/n^2 sum_ij k(x_i, x_j) + 1/m^2 sum_ij k(y_i, y_j) - 2/(nm) sum_ij k(x_i, y_j)
    MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
              - 2/(nm) sum_ij k(x_i, y_j)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genzoo.core.errors import InputError


def check_samples(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float]) -> list[float]:
    """The bandwidths as floats, after checking that x (n, D) and y (m, D) share D and that
    ``sigmas`` are positive and finite; InputError otherwise."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise InputError(
            f"mmd needs two (n, D) samples of one dimension D, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    sig = [float(s) for s in (sigmas if isinstance(sigmas, (list, tuple)) else list(sigmas))]
    if not sig or not all(s > 0 and math.isfinite(s) for s in sig):
        raise InputError(f"sigmas={sigmas!r}: give one or more positive kernel bandwidths")
    return sig


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """(n, m) mixture-of-Gaussians kernel sum_s exp(-|a_i - b_j|^2 / (2 sigma_s^2)) for a (n, D)
    and b (m, D); differentiable, in the dtype of the inputs."""
    d2 = (
        (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    ).clamp_min(0.0)  # rounding can make a distance of 0 slightly negative
    return sum(torch.exp(-d2 / (2.0 * s * s)) for s in sigmas)


def mmd(
    x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float], unbiased: bool = True
) -> torch.Tensor:
    """Squared MMD (a 0-dim tensor) between x (n, D) and y (m, D) under the mixture of
    Gaussian kernels with standard deviations ``sigmas``: the unbiased U-statistic (default;
    n, m >= 2) or the biased V-statistic. Differentiable; dtype and device follow x."""
    sig = check_samples(x, y, sigmas)
    y = y.to(x)
    n, m = len(x), len(y)
    if unbiased and (n < 2 or m < 2):
        raise InputError("the unbiased MMD needs at least two points in each sample")
    kxx, kyy, kxy = kernel_matrix(x, x, sig), kernel_matrix(y, y, sig), kernel_matrix(x, y, sig)
    if unbiased:
        sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    else:
        sxx, syy = kxx.sum() / (n * n), kyy.sum() / (m * m)
    return sxx + syy - 2.0 * kxy.sum() / (n * m)
