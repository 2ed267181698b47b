"""Negative log-likelihood of energy models: -log p(x) = F(x) + log Z, in nats per example.

log Z is exact (enumeration of the smaller layer) when that layer has at most
``eval.exact_max_units`` units; otherwise it is estimated by forward AIS from the base-rate model
and, when ``eval.reverse``, also by reverse AIS, so that the true value is bracketed:
``nll_nats`` (forward) is a stochastic lower bound and ``nll_nats_reverse`` an upper bound in
expectation, the latter only as far as the model samples that start it are exact.

:func:`log_z_nll` is that recipe for any per-example F(x), so that the mean-field bound of a DBM
(:mod:`genzoo.evaluation.variational`) is the same computation with F_Q(x) in place of F(x).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, has
from genzoo.evaluation import progress
from genzoo.evaluation._common import (
    DTYPES,
    ais_disagreement,
    check_data,
    default_generator,
    evaluation_copy,
    example_stderr,
)
from genzoo.evaluation.ais import (
    ais_log_partition,
    linear_schedule,
    reverse_ais_from,
    sm08_schedule,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.report import NLL_UNIT, EvaluationReport
from genzoo.evaluation.stats import Estimate
from genzoo.models.base import trusted_input

# (evaluation copy, AIS base, lo, hi, generator) -> start states (hi - lo, D) of reverse runs.
ReverseStart = Callable[[object, object, int, int, torch.Generator], torch.Tensor]


def _free_energies(model, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """F(x) (N,) float64, ``batch_size`` rows at a time in the model's device and dtype."""
    p = next(model.parameters())
    with torch.no_grad():
        return torch.cat(
            [
                model.free_energy(x[s : s + batch_size].to(device=p.device, dtype=p.dtype))
                for s in range(0, len(x), batch_size)
            ]
        ).to(torch.float64)


def persistent_chains(model) -> torch.Tensor | None:
    """The persistent chains (n_chains, D) of a PCD-trained energy model, or None: the buffer
    ``chains`` that such models register so that checkpoints carry them (a CD-trained model
    has none, or an empty one)."""
    chains = dict(model.named_buffers()).get("chains")
    return chains if chains is not None and chains.numel() > 0 else None


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
    chains = persistent_chains(model)
    if chains is not None:
        rows = torch.arange(offset, offset + n, device=chains.device) % len(chains)
        v = chains[rows].clone()
    else:
        v = base.sample(n, generator)
    check_data(model, v, "the starting states")
    with trusted_input(), progress.Stage(f"Gibbs burn-in of {n} chains", burn_in) as st:
        for _ in range(burn_in):  # the chain's own states: checked once above, not every step
            v = model.gibbs_step(v, generator=generator)
            st.advance()
    return v


def log_partition(
    m,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator,
    dtype: torch.dtype,
    *,
    distributed: bool = False,
) -> tuple[Estimate, Any, torch.Tensor | None] | None:
    """log Z of the evaluation copy ``m``: exact enumeration when its enumerated layer has at
    most ``eval.exact_max_units`` units -> (Estimate, None, None); else forward AIS with
    ``eval.ais_runs`` runs over ``eval.ais_betas`` temperatures from ``m.ais_base(x_train)``
    -> (Estimate, base, betas); None when the model supports neither."""
    n_units = m.enumerable_free_energy()[1] if has(m, EXACT_LOG_PARTITION) else None
    if n_units is not None and n_units <= eval_config.exact_max_units:
        # Enumeration is the reference AIS is checked against: float64 unless float32 is asked.
        exact_dtype = torch.float32 if eval_config.dtype == "float32" else torch.float64
        exact = exact_log_partition(m, max_units=eval_config.exact_max_units, dtype=exact_dtype)
        return exact, None, None
    if not has(m, AIS):
        return None
    p = next(m.parameters())
    base = m.ais_base(x_train.to(device=p.device, dtype=dtype))
    schedule = sm08_schedule if eval_config.schedule == "sm08" else linear_schedule
    betas = schedule(eval_config.ais_betas)
    z = ais_log_partition(
        m, base, betas, eval_config.ais_runs, generator, dtype, eval_config.ais_shard,
        distributed=distributed,
    )
    return z, base, betas


@dataclasses.dataclass(frozen=True)
class LogZNLL:
    """How one kind of model is evaluated as -log p(x) (<=) F(x) + log Z: the capability it
    needs (and the GenzooError text ``needs`` without it), its per-example ``free_energies(m,
    x)`` (N,) float64, the report's names for the exact and the AIS log Z (``exact_name``,
    ``ais_name``), the error text when it has no log Z (``no_log_z``), the start states of
    reverse AIS (``reverse_start``) and how they are described (``start_text(m)``, given the
    burn-in), and ``bound`` (what the NLL is, when only a bound) with ``extra`` figures of F."""

    capability: str
    needs: str
    free_energies: Callable[[object, torch.Tensor, int, bool], torch.Tensor]
    exact_name: str
    ais_name: str
    no_log_z: str
    reverse_start: ReverseStart
    start_text: Callable[[object, int], str]
    bound: str | None = None
    extra: Callable[[torch.Tensor], dict[str, float]] = lambda f: {}


def log_z_nll(how: LogZNLL, model, x: torch.Tensor, x_train: torch.Tensor, eval_config: EvalConfig,
              generator: torch.Generator | None, distributed: bool) -> EvaluationReport:
    """The report of NLL_i = F(x_i) + log Z for x (N, D) (the arguments of :func:`energy_nll`),
    with F and the reverse-AIS start states given by ``how``."""
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, _ = evaluation_copy(model, x, how.capability, dtype, how.needs)
    check_data(model, x_train, "x_train")
    if generator is None:
        generator = default_generator(m, eval_config)
    found = log_partition(m, x_train, eval_config, generator, dtype, distributed=distributed)
    if found is None:
        raise GenzooError(f"{type(model).__name__} {how.no_log_z}")
    z, base, betas = found
    z_rev = None
    if base is not None and eval_config.reverse:

        def states(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
            return how.reverse_start(m, base, lo, hi, g)

        z_rev = reverse_ais_from(
            m, base, betas, eval_config.ais_runs, states, generator, dtype,
            eval_config.ais_shard, distributed=distributed,
        )
        start_text = how.start_text(m, eval_config.reverse_burn_in)
        z_rev = dataclasses.replace(z_rev, diagnostics={**z_rev.diagnostics, "start": start_text})

    f = how.free_energies(m, x, eval_config.batch_size, distributed)
    nll_i = f + z.value  # -log p(x_i) = F(x_i) + log Z
    se_examples = example_stderr(nll_i)
    runs = eval_config.ais_runs if base is not None else None
    name = how.exact_name if base is None else how.ais_name
    nll = Estimate(
        value=float(nll_i.mean()),
        stderr=math.sqrt(z.stderr**2 + se_examples**2),  # log Z and the examples independent
        n_samples=runs,
        estimator=name,
        diagnostics={"stderr_examples": se_examples, **how.extra(f)},
        unit=NLL_UNIT,
    )
    nll_reverse = warning = None
    if z_rev is not None:
        nll_reverse = Estimate(
            value=float((f + z_rev.value).mean()),
            stderr=math.sqrt(z_rev.stderr**2 + se_examples**2),
            n_samples=runs,
            estimator=z_rev.estimator,
            unit=NLL_UNIT,
        )
        warning = ais_disagreement(z, z_rev)
    return EvaluationReport(
        estimator=name,
        n_examples=len(f),
        nll=nll,
        nll_reverse=nll_reverse,
        log_z=z,
        log_z_reverse=z_rev,
        bound=how.bound,
        dtype=eval_config.dtype,
        wall_s=time.perf_counter() - start,
        warnings=(warning,) if warning else (),
    )


def _reverse_from_chains(m, base, lo: int, hi: int, g: torch.Generator, burn_in: int):
    return model_samples_for_reverse_ais(m, base, hi - lo, burn_in, g, offset=lo)


def _energy_start_text(m, burn_in: int) -> str:
    start_from = "persistent chains" if persistent_chains(m) is not None else "base-model samples"
    return f"{start_from} + {burn_in} Gibbs steps (approximate samples)"


def energy_nll(
    model, x: torch.Tensor, x_train: torch.Tensor, eval_config: EvalConfig,
    generator: torch.Generator | None = None, *, distributed: bool = False,
) -> EvaluationReport:
    """Mean NLL in nats per example of ``x`` (N, D) under the energy model; ``x_train`` builds
    the AIS base model. ``generator`` defaults to one seeded with ``eval_config.seed`` on the
    model's device. The model is not modified (evaluation works on a copy in eval.dtype).

    AIS runs (forward, and reverse with their burn-in) go in shards of ``eval.batch_size``
    runs with their own seeds; with ``distributed`` every rank of the default process group
    calls this with the same arguments, runs shard s if s % world_size == its rank, and all
    ranks return the report one process would (the log weights of all runs are gathered
    before the logsumexp). Exact enumeration is not split.

    The report's ``nll`` has stderr = sqrt(stderr_log_z^2 + var(nll_i)/N) and n_samples = the
    AIS runs (None with exact log Z); ``log_z`` and ``log_z_reverse`` are the Estimates of
    log Z; ``nll_reverse`` uses the reverse one.
    """
    burn_in = eval_config.reverse_burn_in
    how = LogZNLL(
        capability=ENERGY,
        needs="is not an energy model",
        free_energies=lambda m, x, batch_size, distributed: _free_energies(m, x, batch_size),
        exact_name="exact enumeration",
        ais_name="AIS (forward)",
        no_log_z="has neither a small enough layer for exact enumeration nor AIS support",
        reverse_start=lambda m, base, lo, hi, g: _reverse_from_chains(m, base, lo, hi, g, burn_in),
        start_text=_energy_start_text,
    )
    return log_z_nll(how, model, x, x_train, eval_config, generator, distributed)
