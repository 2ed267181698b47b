"""Importance-sampled log-likelihood of latent-variable models (``LATENT``).

For each example x, k draws z_1..z_k ~ q(z|x) from the model's proposal give the weights
w_i = p(x, z_i) / q(z_i|x) and (Burda, Grosse & Salakhutdinov 2016, eq. 8)::

    log p(x) ~= log (1/k) sum_i w_i           (log-mean-exp of log w_i, in float64)
    ELBO(x)  ~= (1/k) sum_i log w_i

E[log (1/k) sum w_i] is a lower bound on log p(x) that tightens monotonically in k and
converges to it; by Jensen's inequality, log-mean-exp >= mean for every example and every set
of draws, so the reported estimate is never below the reported ELBO. The sums over the k draws
are accumulated in chunks (running logsumexp), so memory is bounded by ``max_draws`` rows of
(example, draw) pairs whatever k is.

Per example the Monte Carlo error of log p^ is estimated by the delta method,
var(log mean w) ~= var(w) / (k mean(w)^2) = (k / ESS - 1) / (k - 1), with Kish's effective
sample size ESS = (sum w)^2 / sum w^2, accumulated in the same pass.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import distributions as D

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import LATENT
from genzoo.evaluation._common import (
    DTYPES,
    NOT_APPLICABLE,
    evaluation_copy,
    example_stderr,
    require_finite,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.shards import map_shards


def draw(q: D.Distribution, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n draws (n, *q.batch_shape, *q.event_shape) from ``q`` using ``generator``.

    torch.distributions samplers take no generator, so the common proposals are drawn here from
    explicit noise: Normal (and Independent/MultivariateNormal, loc + L eps) and Bernoulli
    (u < p). A proposal whose class sets ``accepts_generator = True`` (e.g. the SBN's layered
    Bernoulli) is drawn by its own ``sample(shape, generator=...)``. Other families fall back
    to ``q.sample`` only when ``generator`` is None."""
    if getattr(q, "accepts_generator", False):
        return q.sample((n,), generator=generator)
    base = q.base_dist if isinstance(q, D.Independent) else q
    shape = (n, *q.batch_shape, *q.event_shape)
    if isinstance(base, D.Normal):
        eps = torch.randn(shape, generator=generator, dtype=base.loc.dtype, device=base.loc.device)
        return base.loc + base.scale * eps
    if isinstance(base, D.MultivariateNormal):
        eps = torch.randn(shape, generator=generator, dtype=base.loc.dtype, device=base.loc.device)
        return base.loc + (base.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    if isinstance(base, D.Bernoulli):
        u = torch.rand(shape, generator=generator, dtype=base.probs.dtype, device=base.probs.device)
        return (u < base.probs).to(base.probs.dtype)
    if generator is None:
        return q.sample((n,))
    raise GenzooError(
        f"importance sampling cannot draw from a {type(q).__name__} proposal with an explicit "
        "generator; use a Normal, Independent, MultivariateNormal or Bernoulli proposal"
    )


# Rows (example, draw) per model call by default: small blocks keep the (rows, D) decoder
# outputs in cache on a CPU (3x faster than 100,000 rows for a 784-200-200-50 VAE); a GPU
# wants large ones.
CPU_MAX_DRAWS, GPU_MAX_DRAWS = 2_000, 100_000


def _log_weights(model, x: torch.Tensor, q, n: int, generator) -> torch.Tensor:
    """log w (n, B) = log p(x, z) - log q(z|x) for n draws z ~ q, the proposal q(z|x) of x
    (B, D), through the LATENT contract's draws axis (``log_joint(x, z)`` with z (n, B,
    *event)), so x is never copied n times. A proposal with ``sample_and_log_prob`` (e.g. the
    SBN's layered Bernoulli) returns log q(z|x) from the logits it drew with, instead of
    recomputing them in ``log_prob``."""
    if getattr(q, "accepts_generator", False) and hasattr(q, "sample_and_log_prob"):
        z, log_q = q.sample_and_log_prob((n,), generator)  # (n, B, *event), (n, B)
        return model.log_joint(x, z) - log_q
    z = draw(q, n, generator)  # (n, B, *event)
    return model.log_joint(x, z) - q.log_prob(z)


def importance_log_likelihood(
    model,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    dtype: torch.dtype = torch.float64,
    max_draws: int | None = None,
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """Importance-sampled NLL in nats per example of ``x`` (N, D) under a LATENT model with k
    proposal draws per example. Works on a copy of the model in ``dtype`` (float64 by default,
    eval mode, no gradients); the model itself is not modified. ``batch_size`` examples at a
    time, with at most ``max_draws`` (example, draw) rows per model call (default 2,000 on
    the CPU, where blocks that small stay in cache and run 3x faster than 100,000-row ones;
    100,000 on a GPU). The draws, hence the estimate, depend on the block size through how
    torch fills normal draws, so a reported number is reproduced with the same settings.

    Each chunk of ``batch_size`` examples draws from its own generator, seeded from one draw
    of ``generator`` and the chunk index (:mod:`genzoo.evaluation.shards`); with
    ``distributed``, every rank of the default process group calls this with the same
    arguments, runs chunk c if c % world_size == its rank, and all ranks get the per-example
    values of every chunk in order, hence the report of one process.

    Returns a dict: nll_nats (mean -log p^(x)), stderr (std over examples / sqrt(N)),
    stderr_examples (the same), stderr_mc (Monte Carlo error of nll_nats by the delta method),
    elbo_nats (mean -ELBO(x), same draws; >= nll_nats), is_ess (mean effective sample size per
    example), estimator "importance sampling (k=K)", n_samples=k, n_examples, dtype, wall_s,
    per_example_log_px (N,) and per_example_elbo (N,) tensors (float64), and the energy-report
    keys n_betas, log_z, log_z_reverse, nll_nats_reverse, ais_ess as None.
    """
    start = time.perf_counter()
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise GenzooError(f"k={k!r}: the number of importance samples must be an integer >= 1")
    if batch_size < 1 or (max_draws is not None and max_draws < 1):
        raise GenzooError("batch_size and max_draws must be positive")
    m, device = evaluation_copy(
        model, x, LATENT, dtype, "is not a latent-variable model (LATENT)"
    )
    if max_draws is None:
        max_draws = CPU_MAX_DRAWS if torch.device(device).type == "cpu" else GPU_MAX_DRAWS

    def shard(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        """(hi - lo, 3): log p^(x), ELBO(x) and ESS of examples lo..hi-1."""
        xb = x[lo:hi].to(device=device, dtype=dtype)
        q = m.proposal(xb)  # one encoder pass for all k draws
        chunk = max(1, min(k, max_draws // len(xb)))
        lse = torch.full((len(xb),), -math.inf, dtype=torch.float64, device=device)
        lse2 = lse.clone()
        total = torch.zeros(len(xb), dtype=torch.float64, device=device)
        for done in range(0, k, chunk):
            log_w = _log_weights(m, xb, q, min(chunk, k - done), g).to(torch.float64)
            lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))
            lse2 = torch.logaddexp(lse2, torch.logsumexp(2 * log_w, 0))
            total += log_w.sum(0)
        return torch.stack([lse - math.log(k), total / k, torch.exp(2 * lse - lse2)], 1)

    with torch.no_grad():
        per_example = map_shards(len(x), batch_size, shard, 3, generator, distributed)
    log_px_t, elbo_t, ess_t = (c.contiguous() for c in per_example.unbind(1))
    require_finite(log_px_t, "importance weights")
    n = len(x)
    se = example_stderr(log_px_t)
    if k > 1:
        var_mc = ((k / ess_t - 1.0).clamp_min(0.0) / (k - 1)).sum()
        se_mc = float(var_mc.sqrt()) / n
    else:
        se_mc = math.nan
    return {
        "nll_nats": float(-log_px_t.mean()),
        "stderr": se,
        "stderr_examples": se,
        "stderr_mc": se_mc,
        "elbo_nats": float(-elbo_t.mean()),
        "is_ess": float(ess_t.mean()),
        "estimator": f"importance sampling (k={k})",
        **dict.fromkeys(NOT_APPLICABLE),
        "n_samples": k,
        "n_examples": n,
        "dtype": str(dtype).replace("torch.", ""),
        "wall_s": time.perf_counter() - start,
        "per_example_log_px": log_px_t.cpu(),
        "per_example_elbo": elbo_t.cpu(),
    }


def importance_nll(
    model,
    x: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """:func:`importance_log_likelihood` with ``eval_config.is_samples`` draws per example (5000
    by default, the k of the published numbers), ``eval_config.batch_size`` and
    ``eval_config.dtype``; ``generator`` defaults to one seeded with ``eval_config.seed`` on the
    model's device. The per-example tensors are dropped so the report is JSON-ready."""
    if generator is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        generator = torch.Generator(device=device).manual_seed(eval_config.seed)
    report = importance_log_likelihood(
        model,
        x,
        eval_config.is_samples,
        generator,
        batch_size=eval_config.batch_size,
        dtype=DTYPES[eval_config.dtype],
        distributed=distributed,
    )
    report.pop("per_example_log_px")
    report.pop("per_example_elbo")
    return report
