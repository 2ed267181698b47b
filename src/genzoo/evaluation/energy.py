"""Negative log-likelihood of energy models: -log p(x) = F(x) + log Z, in nats per example.

log Z is exact (enumeration of the smaller layer) when that layer has at most
``eval.exact_max_units`` units; otherwise it is estimated by forward AIS from the base-rate model
and, when ``eval.reverse``, also by reverse AIS, so that the true value is bracketed:
``nll_nats`` (forward) is a stochastic lower bound and ``nll_nats_reverse`` an upper bound in
expectation, the latter only as far as the model samples that start it are exact.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, has
from genzoo.evaluation._common import (
    DTYPES,
    add_nll_summary,
    add_reverse_log_z,
    evaluation_copy,
    log_z_report,
)
from genzoo.evaluation.ais import (
    ais_log_partition,
    linear_schedule,
    reverse_ais_from,
    sm08_schedule,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.stats import Estimate


def _free_energies(model, x: torch.Tensor, batch_size: int, dtype: torch.dtype) -> torch.Tensor:
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat(
            [
                model.free_energy(x[s : s + batch_size].to(device=device, dtype=dtype))
                for s in range(0, len(x), batch_size)
            ]
        ).to(torch.float64)


@torch.no_grad()
def model_samples_for_reverse_ais(
    model,
    base,
    n: int,
    burn_in: int,
    generator: torch.Generator | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Approximate model samples (n, D) to start reverse AIS runs offset..offset+n-1: the
    persistent chains when the model has them (run i starts from chain i mod n_chains),
    otherwise exact draws from the base model; either is then run ``burn_in`` Gibbs steps at
    beta = 1. Works on the given (copied) model."""
    if _has_chains(model):
        rows = torch.arange(offset, offset + n, device=model.chains.device) % len(model.chains)
        v = model.chains[rows].clone()
    else:
        v = base.sample(n, generator)
    for _ in range(burn_in):
        v = model.gibbs_step(v, generator=generator)
    return v


def _has_chains(model) -> bool:
    chains = getattr(model, "chains", None)
    return isinstance(chains, torch.Tensor) and chains.numel() > 0


def forward_log_partition(
    m,
    model,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
    report: dict[str, Any],
    *,
    exact_estimator: str,
    ais_estimator: str,
    no_estimator: str,
    distributed: bool = False,
) -> tuple[Estimate, Any, torch.Tensor | None, torch.Generator]:
    """log Z of the evaluation copy ``m`` of ``model`` for an F(x) + log Z report: exact
    enumeration when the model's enumerated layer has at most ``eval.exact_max_units`` units,
    else forward AIS from ``m.ais_base(x_train)`` (GenzooError "<Model> <no_estimator>" when
    the model supports neither). Checks x_train; ``generator`` None: one seeded with
    ``eval.seed`` on ``device``. Writes ``estimator`` (``exact_estimator`` or
    ``ais_estimator``) and, for AIS, n_samples, n_betas, ais_ess into ``report``. Returns
    (log Z, the AIS base or None, the AIS schedule or None, the generator)."""
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x_train, "x_train")
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(eval_config.seed)
    n_units = m.enumerable_free_energy()[1] if has(m, EXACT_LOG_PARTITION) else None
    if n_units is not None and n_units <= eval_config.exact_max_units:
        z = exact_log_partition(m, max_units=eval_config.exact_max_units, dtype=dtype)
        report["estimator"] = exact_estimator
        return z, None, None, generator
    if not has(m, AIS):
        raise GenzooError(f"{type(model).__name__} {no_estimator}")
    base = m.ais_base(x_train.to(device=device, dtype=dtype))
    schedule = sm08_schedule if eval_config.schedule == "sm08" else linear_schedule
    betas = schedule(eval_config.ais_betas)
    z = ais_log_partition(
        m, base, betas, eval_config.ais_runs, generator, dtype, eval_config.batch_size,
        distributed=distributed,
    )
    report.update(
        estimator=ais_estimator,
        n_samples=eval_config.ais_runs,
        n_betas=len(betas),
        ais_ess=z.diagnostics["ess"],
    )
    return z, base, betas, generator


def energy_nll(
    model,
    x: torch.Tensor,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """Mean NLL in nats per example of ``x`` (N, D) under the energy model; ``x_train`` builds
    the AIS base model. ``generator`` defaults to one seeded with ``eval_config.seed`` on the
    model's device. The model is not modified (evaluation works on a copy in eval.dtype).

    AIS runs (forward, and reverse with their burn-in) go in shards of ``eval.batch_size``
    runs with their own seeds; with ``distributed`` every rank of the default process group
    calls this with the same arguments, runs shard s if s % world_size == its rank, and all
    ranks return the report one process would (the log weights of all runs are gathered
    before the logsumexp). Exact enumeration is not split.

    Returns nll_nats, stderr (sqrt(stderr_log_z^2 + var(nll_i)/N)), stderr_log_z,
    stderr_examples, estimator, n_samples (AIS runs), n_betas, log_z, log_z_reverse,
    nll_nats_reverse, stderr_log_z_reverse, reverse_start, ais_ess, ais_ess_reverse,
    n_examples, dtype, wall_s (keys that do not apply are None).
    """
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(model, x, ENERGY, dtype, "is not an energy model")
    report = log_z_report()
    z, base, betas, generator = forward_log_partition(
        m, model, x_train, eval_config, generator, dtype, device, report,
        exact_estimator="exact enumeration",
        ais_estimator="AIS (forward)",
        no_estimator="has neither a small enough layer for exact enumeration nor AIS support",
        distributed=distributed,
    )
    if base is not None and eval_config.reverse:

        def start_states(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
            burn_in = eval_config.reverse_burn_in
            return model_samples_for_reverse_ais(m, base, hi - lo, burn_in, g, offset=lo)

        z_rev = reverse_ais_from(
            m, base, betas, eval_config.ais_runs, start_states, generator, dtype,
            eval_config.batch_size, distributed=distributed,
        )
        start_from = "persistent chains" if _has_chains(m) else "base-model samples"
        add_reverse_log_z(
            report,
            z_rev,
            f"{start_from} + {eval_config.reverse_burn_in} Gibbs steps (approximate samples)",
        )

    f = _free_energies(m, x, eval_config.batch_size, dtype)
    add_nll_summary(report, f, z, eval_config.dtype)
    report["wall_s"] = time.perf_counter() - start
    return report
