"""Importance-sampled log-likelihood of latent-variable models (``LATENT``).

:func:`importance_log_px` gives the per-example estimates log p^(x); :func:`importance_nll`
the report of their mean as an NLL in nats per example.

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

import dataclasses
import math
import time
from typing import Any, Protocol, runtime_checkable

import torch
from torch import distributions as D

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import LATENT
from genzoo.evaluation import progress
from genzoo.evaluation._common import (
    DTYPES,
    default_generator,
    evaluation_copy,
    example_stderr,
    require_finite,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.report import NLL_UNIT, EvaluationReport
from genzoo.evaluation.shards import local_items, map_shards
from genzoo.evaluation.stats import Estimate


@runtime_checkable
class GeneratorProposal(Protocol):
    """What a proposal q(z|x) offers the importance sampler beyond ``torch.distributions``.

    A proposal is a :class:`torch.distributions.Distribution` of batch shape (B,). Its
    ``sample`` takes no generator in torch, so Normal, MultivariateNormal, Bernoulli and their
    :class:`~torch.distributions.Independent` wrappers are drawn here from explicit noise
    (:func:`draw`). Any other family declares ``accepts_generator = True`` and draws itself
    with ``sample(sample_shape, generator=None)``; it may also offer
    ``sample_and_log_prob(sample_shape, generator=None) -> (z, log q(z|x))``, the draws with
    their log-density computed from the quantities they were drawn with (the importance sampler
    then skips ``log_prob``: :class:`FusedProposal`). Examples: the SBN's layered Bernoulli, the DLGM's rank-one
    Gaussian.
    """

    accepts_generator: bool

    def sample(self, sample_shape: Any = (), generator: torch.Generator | None = None) -> Any: ...


@runtime_checkable
class FusedProposal(GeneratorProposal, Protocol):
    """A :class:`GeneratorProposal` that also returns the log-density of its draws."""

    def sample_and_log_prob(
        self, sample_shape: Any = (), generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _draws_itself(q) -> bool:
    return isinstance(q, GeneratorProposal) and bool(q.accepts_generator)


def draw(q: D.Distribution, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n draws (n, *q.batch_shape, *q.event_shape) from the proposal ``q`` using
    ``generator`` (:class:`GeneratorProposal`): Normal and MultivariateNormal as loc + L eps,
    Bernoulli as u < p, a proposal that draws itself by its own ``sample``. Other families
    fall back to ``q.sample`` only when ``generator`` is None."""
    if _draws_itself(q):
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
        "generator; use a Normal, Independent, MultivariateNormal or Bernoulli proposal, or one "
        "that sets accepts_generator (genzoo.evaluation.importance.GeneratorProposal)"
    )


def draw_with_log_prob(
    q: D.Distribution, n: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, log q(z|x)): n draws (n, B, *event) of the proposal and their log-densities (n, B),
    by ``sample_and_log_prob`` when the proposal offers it (:class:`GeneratorProposal`), else
    :func:`draw` and ``log_prob``."""
    if _draws_itself(q) and isinstance(q, FusedProposal):
        return q.sample_and_log_prob((n,), generator)
    z = draw(q, n, generator)
    return z, q.log_prob(z)


# Rows (example, draw) per model call by default: small blocks keep the (rows, D) decoder
# outputs in cache on a CPU (3x faster than 100,000 rows for a 784-200-200-50 VAE); a GPU
# wants large ones.
CPU_MAX_DRAWS, GPU_MAX_DRAWS = 2_000, 100_000


def _log_weights(model, x: torch.Tensor, q, n: int, generator) -> torch.Tensor:
    """log w (n, B) = log p(x, z) - log q(z|x) for n draws z ~ q, the proposal q(z|x) of x
    (B, D), through the LATENT contract's draws axis (``log_joint(x, z)`` with z (n, B,
    *event)), so x is never copied n times."""
    z, log_q = draw_with_log_prob(q, n, generator)  # (n, B, *event), (n, B)
    # the network passes in the model's dtype, their difference (both tens of nats) in float64
    return model.log_joint(x, z).to(torch.float64) - log_q.to(torch.float64)


@dataclasses.dataclass(frozen=True)
class ImportanceEstimates:
    """Per-example results of importance sampling with ``k`` draws from the proposal, float64
    CPU tensors (N,): ``log_px`` = log (1/k) sum_i w_i, the estimate of log p(x); ``elbo`` =
    (1/k) sum_i log w_i (<= log_px); ``ess`` = (sum w)^2 / sum w^2, Kish's effective sample
    size (1..k). ``dtype``: the evaluation precision; ``wall_s``: seconds taken."""

    log_px: torch.Tensor
    elbo: torch.Tensor
    ess: torch.Tensor
    k: int
    dtype: str
    wall_s: float

    def nll(self) -> Estimate:
        """-mean log p^(x) in nats per example. stderr: the spread over examples,
        std(log p^) / sqrt(N); diagnostics: ``stderr_examples`` (the same), ``stderr_mc`` (the
        Monte Carlo error of the mean, sqrt(sum_n var_n) / N with var_n = (k / ESS_n - 1) /
        (k - 1) by the delta method; NaN for k = 1), ``elbo_nats`` (-mean ELBO, >= the NLL),
        ``is_ess`` (mean ESS)."""
        n, k = len(self.log_px), self.k
        se = example_stderr(self.log_px)
        if k > 1:
            var_mc = ((k / self.ess - 1.0).clamp_min(0.0) / (k - 1)).sum()
            se_mc = float(var_mc.sqrt()) / n
        else:
            se_mc = math.nan
        return Estimate(
            value=float(-self.log_px.mean()),
            stderr=se,
            n_samples=k,
            estimator=f"importance sampling (k={k})",
            diagnostics={
                "stderr_examples": se,
                "stderr_mc": se_mc,
                "elbo_nats": float(-self.elbo.mean()),
                "is_ess": float(self.ess.mean()),
            },
            unit=NLL_UNIT,
        )

    def report(self) -> EvaluationReport:
        """The NLL report of these examples (:meth:`nll` with N, dtype and time)."""
        nll = self.nll()
        return EvaluationReport(
            estimator=nll.estimator, n_examples=len(self.log_px), nll=nll, dtype=self.dtype,
            wall_s=self.wall_s,
        )


def importance_log_px(
    model,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    batch_size: int = 1000,
    dtype: torch.dtype = torch.float64,
    max_draws: int | None = None,
    *,
    distributed: bool = False,
) -> ImportanceEstimates:
    """Importance-sampled log p(x) of every example of ``x`` (N, D) under a LATENT model, with
    k proposal draws per example. Works on a copy of the model in ``dtype`` (float64 by
    default, eval mode, no gradients); the model itself is not modified. ``batch_size``
    examples at a time, with at most ``max_draws`` (example, draw) rows per model call (default
    2,000 on the CPU, where blocks that small stay in cache and run 3x faster than 100,000-row
    ones; 100,000 on a GPU). The draws, hence the estimate, depend on the block size through
    how torch fills normal draws, so a reported number is reproduced with the same settings.

    Each chunk of ``batch_size`` examples draws from its own generator, seeded from one draw
    of ``generator`` and the chunk index (:mod:`genzoo.evaluation.shards`); with
    ``distributed``, every rank of the default process group calls this with the same
    arguments, runs chunk c if c % world_size == its rank, and all ranks get the per-example
    values of every chunk in order, hence the estimates of one process.
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
            log_w = _log_weights(m, xb, q, min(chunk, k - done), g)  # float64
            lse = torch.logaddexp(lse, torch.logsumexp(log_w, 0))  # log sum w
            lse2 = torch.logaddexp(lse2, torch.logsumexp(2 * log_w, 0))  # log sum w^2
            total += log_w.sum(0)
            st.advance(len(xb) * min(chunk, k - done))  # (example, draw) pairs
        # log p^ = log sum w - log k;  ELBO = mean log w;  ESS = (sum w)^2 / sum w^2
        return torch.stack([lse - math.log(k), total / k, torch.exp(2 * lse - lse2)], 1)

    mine = local_items(len(x), batch_size, distributed)
    name = f"importance sampling, {len(x)} examples x {k} draws"
    with torch.no_grad(), progress.Stage(name, mine * k, "draws") as st:
        per_example = map_shards(len(x), batch_size, shard, 3, generator, distributed)
    log_px, elbo, ess = (c.contiguous() for c in per_example.unbind(1))
    require_finite(log_px, "importance weights")
    return ImportanceEstimates(
        log_px=log_px, elbo=elbo, ess=ess, k=k, dtype=str(dtype).replace("torch.", ""),
        wall_s=time.perf_counter() - start,
    )


def importance_nll(
    model,
    x: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> EvaluationReport:
    """The NLL report (nats per example) of :func:`importance_log_px` with
    ``eval_config.is_samples`` draws per example (5000 by default, the k of the published
    numbers), ``eval_config.batch_size`` and ``eval_config.dtype`` (``mixed``: the model in
    float32, log-weights and their log-mean-exp in float64); ``generator`` defaults to
    one seeded with ``eval_config.seed`` on the model's device."""
    if generator is None:
        generator = default_generator(model, eval_config)
    estimates = importance_log_px(
        model,
        x,
        eval_config.is_samples,
        generator,
        batch_size=eval_config.batch_size,
        dtype=DTYPES[eval_config.dtype],
        distributed=distributed,
    )
    return dataclasses.replace(estimates, dtype=eval_config.dtype).report()  # "mixed" by name
