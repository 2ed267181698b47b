"""Annealed importance sampling (AIS) of the log partition function of an energy model.

Neal (2001), "Annealed importance sampling"; Salakhutdinov & Murray (2008), "On the quantitative
analysis of deep belief networks" (SM08: base-rate initial model, schedule, RBM transitions).

Forward AIS. With intermediate unnormalised densities p*_k(v) = exp(-F_k(v)), k = 0..K
(beta_0 = 0 the base A with known Z_A, beta_K = 1 the model B), and transitions T_k leaving
p_k invariant: draw v_1 ~ p_0 exactly, then for k = 1..K

    log w += F_{k-1}(v_k) - F_k(v_k),    v_{k+1} ~ T_k(v_k, .)

E[w] = Z_B / Z_A, so log Z_B ≈ log Z_A + log mean w. By Jensen the estimate is biased low in
expectation (a stochastic lower bound on log Z, hence on the NLL).

Reverse AIS runs the same recursion over the reversed schedule from samples of the model B:
E[w_rev] = Z_A / Z_B and log Z_B ≈ log Z_A - log mean w_rev, biased high in expectation when the
start samples are exact (Burda, Grosse & Salakhutdinov 2015). Together they bracket log Z.

The standard error of log mean w is from the delta method (stats.log_mean_exp_stderr).
Runs are made in shards with their own seeds (evaluation/shards.py), so that several processes
can share them and the log weights of all runs are combined exactly, whatever the world size.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, has
from genzoo.evaluation import progress
from genzoo.evaluation.shards import local_shards, map_shards
from genzoo.evaluation.stats import Estimate, effective_sample_size, log_mean_exp_stderr

# SM08: 500 temperatures uniform in [0, 0.5), 4,000 in [0.5, 0.9), 10,000 in [0.9, 1.0].
_SM08_SEGMENTS = ((0.0, 0.5, 500), (0.5, 0.9, 4000), (0.9, 1.0, 10000))
SM08_N_BETAS = sum(n for _, _, n in _SM08_SEGMENTS)


def sm08_schedule(n_betas: int = SM08_N_BETAS) -> torch.Tensor:
    """The Salakhutdinov & Murray (2008) schedule: ``n_betas`` inverse temperatures (float64,
    increasing from 0 to 1), 500 / 4,000 / 10,000 of the default 14,500 uniform in [0, 0.5),
    [0.5, 0.9), [0.9, 1.0]. Other lengths keep those proportions."""
    if n_betas < 2:
        raise GenzooError(f"an AIS schedule needs at least 2 temperatures (got {n_betas})")
    counts = [round(n_betas * n / SM08_N_BETAS) for _, _, n in _SM08_SEGMENTS[:2]]
    counts[0] = max(counts[0], 1)  # beta = 0 must be present
    counts.append(max(n_betas - sum(counts), 1))  # beta = 1 must be present
    while sum(counts) > n_betas:  # only for tiny n_betas, where rounding overshoots
        counts[1 if counts[1] > 0 else 0] -= 1
    (lo0, hi0, _), (lo1, hi1, _), (lo2, hi2, _) = _SM08_SEGMENTS
    parts = [
        np.linspace(lo0, hi0, counts[0], endpoint=False),
        np.linspace(lo1, hi1, counts[1], endpoint=False),
        np.linspace(lo2, hi2, counts[2]) if counts[2] > 1 else np.array([1.0]),
    ]
    return torch.from_numpy(np.concatenate(parts))


def linear_schedule(n_betas: int) -> torch.Tensor:
    """``n_betas`` evenly spaced inverse temperatures from 0 to 1 (float64)."""
    if n_betas < 2:
        raise GenzooError(f"an AIS schedule needs at least 2 temperatures (got {n_betas})")
    return torch.linspace(0.0, 1.0, n_betas, dtype=torch.float64)


def _check_betas(betas) -> list[float]:
    b = [float(x) for x in (betas.tolist() if isinstance(betas, torch.Tensor) else betas)]
    if len(b) < 2 or b[0] != 0.0 or b[-1] != 1.0 or any(y < x for x, y in pairwise(b)):
        raise GenzooError(
            "AIS temperatures must be non-decreasing from exactly 0 to exactly 1 "
            "(use sm08_schedule or linear_schedule)"
        )
    return b


def _float_copies(model, base, dtype: torch.dtype):
    if not has(model, AIS):
        raise GenzooError(f"{type(model).__name__} does not support AIS")
    return copy.deepcopy(model).to(dtype), copy.deepcopy(base).to(dtype)


@torch.no_grad()
def _anneal(
    model, base, betas: list[float], v: torch.Tensor, generator, stage: progress.Stage
) -> torch.Tensor:
    """Run the AIS recursion over ``betas`` from states v (n, D); return log w (n,).

    Each step is the AnnealingPath contract's ``annealed_step``: the increment
    log w += F_{k-1}(v) - F_k(v), fused with the transition v ~ T_k(v, .) (none after the
    last temperature). ``stage`` advances by one per temperature."""
    log_w = torch.zeros(v.shape[0], dtype=torch.float64, device=v.device)
    last = len(betas) - 1
    for k in range(1, len(betas)):
        inc, v = model.annealed_step(v, betas[k - 1], betas[k], base, generator, transition=k < last)
        log_w += inc.to(torch.float64)
        stage.advance()
    return log_w


def _stage(direction: str, n_runs: int, batch_size: int, n_betas: int, distributed: bool):
    """The progress stage of this process's AIS runs: its shards x temperature steps."""
    shards = len(local_shards(n_runs, batch_size, distributed))
    return progress.Stage(f"{direction} AIS, {n_runs} runs", shards * (n_betas - 1),
                          "temperatures")


def ais_log_partition(
    model,
    base,
    betas: Sequence[float] | torch.Tensor,
    n_runs: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    batch_size: int | None = None,
    *,
    distributed: bool = False,
) -> Estimate:
    """Forward AIS estimate of log Z of ``model`` from ``base`` (``model.ais_base(x_train)``).

    ``betas``: increasing inverse temperatures from 0 to 1 (e.g. ``sm08_schedule()``);
    ``n_runs`` independent runs in shards of ``batch_size`` (default: one shard of all runs),
    each shard with its own generator seeded from one draw of ``generator`` and the shard index
    (:mod:`genzoo.evaluation.shards`). With ``distributed``, every rank of the default process
    group calls this with the same arguments, runs its shards, and all receive the same
    estimate, equal to the one-process estimate. Works on ``dtype`` copies of model and base, so
    neither is modified; with float32 (eval.dtype=mixed) the products, sweeps and draws run in
    float32 while each log-weight increment is formed and accumulated in float64 (the model's
    ``annealed_step``). The generator must live on the model's device. Returns an Estimate in
    nats; diagnostics: ess, log_w (list), n_betas, direction, log_z_base.
    """
    if n_runs < 2:
        raise GenzooError(f"AIS needs n_runs >= 2 for a standard error (got {n_runs})")
    start = time.perf_counter()
    b = _check_betas(betas)
    m, a = _float_copies(model, base, dtype)
    log_z_a = float(a.log_partition())

    def shard(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        return _anneal(m, a, b, a.sample(hi - lo, g), g, st)

    with _stage("forward", n_runs, batch_size or n_runs, len(b), distributed) as st:
        log_w = map_shards(n_runs, batch_size or n_runs, shard, 1, generator, distributed)[:, 0]
    est, se = log_mean_exp_stderr(log_w)
    return Estimate(
        value=log_z_a + est,
        stderr=se,
        n_samples=n_runs,
        estimator="AIS (forward)",
        diagnostics=_diagnostics(log_w, len(b), "forward", log_z_a, start),
        unit="nats",
    )


def reverse_ais_log_partition(
    model,
    base,
    betas: Sequence[float] | torch.Tensor,
    v_model: torch.Tensor,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    batch_size: int | None = None,
    *,
    distributed: bool = False,
) -> Estimate:
    """Reverse AIS estimate of log Z from samples ``v_model`` (n_runs, D) of the model.

    Anneals from beta = 1 to 0 over the reversed ``betas``; log Z = log Z_A - log mean w_rev.
    With exact model samples this is a stochastic upper bound on log Z in expectation; with
    approximate samples (Gibbs chains) the bound holds only as far as the chains have mixed.
    Shards and ``distributed`` as in :func:`ais_log_partition`.
    """
    if v_model.shape[0] < 2:
        raise GenzooError("reverse AIS needs at least 2 model samples for a standard error")

    def rows(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        return v_model[lo:hi]

    return reverse_ais_from(
        model, base, betas, v_model.shape[0], rows, generator, dtype, batch_size,
        distributed=distributed,
    )


def reverse_ais_from(
    model,
    base,
    betas: Sequence[float] | torch.Tensor,
    n_runs: int,
    start: Callable[[int, int, torch.Generator], torch.Tensor],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    batch_size: int | None = None,
    *,
    distributed: bool = False,
) -> Estimate:
    """:func:`reverse_ais_log_partition` whose start states are made shard by shard:
    ``start(lo, hi, g)`` returns the model samples (hi - lo, D) of runs lo..hi-1 drawing from
    the shard's generator ``g``, so that their burn-in is split across ranks too."""
    if n_runs < 2:
        raise GenzooError("reverse AIS needs at least 2 model samples for a standard error")
    t0 = time.perf_counter()
    b = _check_betas(betas)[::-1]
    m, a = _float_copies(model, base, dtype)
    log_z_a = float(a.log_partition())
    device = next(m.parameters()).device

    def shard(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        return _anneal(m, a, b, start(lo, hi, g).to(device=device, dtype=dtype), g, st)

    with _stage("reverse", n_runs, batch_size or n_runs, len(b), distributed) as st:
        log_w = map_shards(n_runs, batch_size or n_runs, shard, 1, generator, distributed)[:, 0]
    est, se = log_mean_exp_stderr(log_w)
    return Estimate(
        value=log_z_a - est,
        stderr=se,
        n_samples=n_runs,
        estimator="AIS (reverse)",
        diagnostics=_diagnostics(log_w, len(b), "reverse", log_z_a, t0),
        unit="nats",
    )


def _diagnostics(log_w, n_betas, direction, log_z_a, start) -> dict:
    return {
        "ess": effective_sample_size(log_w),
        "log_w": log_w.tolist(),  # one conversion, not one per run
        "n_betas": n_betas,
        "direction": direction,
        "log_z_base": log_z_a,
        "wall_s": time.perf_counter() - start,
    }
