"""Kernel maximum mean discrepancy between two samples, and its permutation test.

Gretton, Borgwardt, Rasch, Schoelkopf & Smola (2012), "A kernel two-sample test", JMLR 13,
with a mixture of Gaussian kernels k(a, b) = sum_s exp(-|a - b|^2 / (2 sigma_s^2)).
**Bandwidth convention: each entry of ``sigmas`` is a standard deviation sigma (the kernel
divides by 2 sigma^2).** Li, Swersky & Zemel (2015) write their GMMN kernel as
exp(-|a - b|^2 / (2 s)) with s = 2, 5, 10, 20, 40, 80 on MNIST, i.e. their s is our sigma^2:
pass ``sigmas = sqrt(s)``.

For x (n, D) and y (m, D), lemma 6 (biased, a V-statistic, always >= 0) and eq. (3)
(unbiased, a U-statistic, zero in expectation when both samples share a distribution, may be
negative)::

    MMD_b^2 = 1/n^2 sum_ij k(x_i, x_j) + 1/m^2 sum_ij k(y_i, y_j) - 2/(nm) sum_ij k(x_i, y_j)
    MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j)
              - 2/(nm) sum_ij k(x_i, y_j)

The permutation test pools the two samples, reassigns the n + m points to groups of sizes n
and m at random, and reports p = (1 + #{permuted statistic >= observed}) / (1 + P): exact
level under the null that both samples come from one distribution (the pooled points are then
exchangeable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genzoo.core.errors import InputError
from genzoo.evaluation.stats import Estimate


def _check(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float]) -> list[float]:
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
    sig = _check(x, y, sigmas)
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


@torch.no_grad()
def mmd_permutation_test(
    x: torch.Tensor,
    y: torch.Tensor,
    sigmas: Sequence[float],
    n_permutations: int = 200,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    chunk: int = 50,
) -> Estimate:
    """Unbiased MMD^2 between x (n, D) and y (m, D) with a permutation-test p-value.

    Returns an :class:`Estimate`: ``value`` MMD_u^2 (kernel units, not nats), ``stderr`` the
    standard deviation of the statistic under the permutation null, ``n_samples`` n + m,
    diagnostics ``p_value``, ``n_permutations``, ``sigmas``, ``null_mean``. The pooled kernel
    matrix ((n+m)^2 entries) is formed once in ``dtype``; permutations are evaluated ``chunk``
    at a time. Permutations come from ``generator`` (a CPU generator)."""
    sig = _check(x, y, sigmas)
    if n_permutations < 1:
        raise InputError("n_permutations must be >= 1")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise InputError("the MMD permutation test needs at least two points in each sample")
    z = torch.cat([x.to(dtype), y.to(device=x.device, dtype=dtype)])
    k = kernel_matrix(z, z, sig)
    diag = k.diagonal()
    total = n + m

    def stats(s: torch.Tensor) -> torch.Tensor:
        # s (P, n+m) indicators of group x; MMD_u^2 for each row from block sums of K.
        t = 1.0 - s
        kss = ((s @ k) * s).sum(1) - s @ diag
        ktt = ((t @ k) * t).sum(1) - t @ diag
        kst = ((s @ k) * t).sum(1)
        return kss / (n * (n - 1)) + ktt / (m * (m - 1)) - 2.0 * kst / (n * m)

    first = torch.zeros(1, total, dtype=dtype, device=k.device)
    first[0, :n] = 1.0
    observed = stats(first)[0]
    null: list[torch.Tensor] = []
    for start in range(0, n_permutations, chunk):
        p = min(chunk, n_permutations - start)
        perm = torch.argsort(torch.rand(p, total, generator=generator), dim=1).to(k.device)
        s = (perm < n).to(dtype)
        null.append(stats(s))
    null_t = torch.cat(null)
    exceed = int((null_t >= observed).sum())
    p_value = (1 + exceed) / (1 + n_permutations)
    return Estimate(
        value=float(observed),
        stderr=float(null_t.std()) if n_permutations > 1 else float("nan"),
        n_samples=total,
        estimator="mmd_permutation_test",
        diagnostics={
            "p_value": p_value,
            "n_permutations": n_permutations,
            "sigmas": sig,
            "null_mean": float(null_t.mean()),
        },
    )


__all__ = ["kernel_matrix", "mmd", "mmd_permutation_test"]
