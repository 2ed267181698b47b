"""Kernel maximum mean discrepancy between two samples, and its permutation test.

The statistic and its kernels are :mod:`genzoo.ops.kernels` (Gretton et al. 2012, with the
bandwidth convention stated there). The permutation test pools the two samples, reassigns the
n + m points to groups of sizes n and m at random, and reports
p = (1 + #{permuted statistic >= observed}) / (1 + P): exact level under the null that both
samples come from one distribution (the pooled points are then exchangeable).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genzoo.core.errors import InputError
from genzoo.evaluation import progress
from genzoo.evaluation.stats import Estimate
from genzoo.ops.kernels import check_samples, kernel_matrix, mmd


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
    sig = check_samples(x, y, sigmas)
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
    with progress.Stage(f"MMD permutation test, {n} + {m} points", n_permutations,
                        "permutations") as st:
        for start in range(0, n_permutations, chunk):
            p = min(chunk, n_permutations - start)
            perm = torch.argsort(torch.rand(p, total, generator=generator), dim=1).to(k.device)
            s = (perm < n).to(dtype)
            null.append(stats(s))
            st.advance(p)
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
