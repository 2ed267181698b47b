"""Test NLL bound of models with a mean-field variational bound (deep Boltzmann machines).

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 4: for any Q(h | v),

    log p(v) >= -F_Q(v) - log Z,    F_Q(v) = E_Q[E(v, h)] - H(Q)

so -log p(v) <= F_Q(v) + log Z, reported per example in nats. log Z is exact (enumeration of the
smaller parity of layers) when that has at most ``eval.exact_max_units`` units, otherwise
estimated by AIS over the model's annealing path (alternate layers summed out analytically),
forward and, with ``eval.reverse``, reverse. Forward AIS underestimates log Z in expectation, so
the reported bound is itself a stochastic estimate: the NLL bound with the reverse log Z
(``nll_nats_reverse``) is the conservative one, as far as the chains that start it have mixed.

AIS runs (forward, and reverse with their burn-in) and the test examples are cut into shards of
``eval.batch_size`` with their own seeds (:mod:`genzoo.evaluation.shards`), so that under
torchrun the ranks share them and all combine the gathered log weights and F_Q(x) exactly as
one process would.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from genzoo.core.protocols import VARIATIONAL
from genzoo.evaluation._common import (
    DTYPES,
    add_nll_summary,
    add_reverse_log_z,
    evaluation_copy,
    log_z_report,
    require_finite,
)
from genzoo.evaluation.ais import reverse_ais_from
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import forward_log_partition
from genzoo.evaluation.shards import map_shards


@torch.no_grad()
def variational_free_energies(
    model, x: torch.Tensor, batch_size: int = 1000, *, distributed: bool = False
) -> torch.Tensor:
    """F_Q(x) (N,) float64 CPU of a ``VARIATIONAL`` model, in batches of ``batch_size``, on the
    model's device and dtype. The model is used as given (no copy). With ``distributed`` (every
    rank calling with the same arguments) batch s runs on rank s % world_size and every rank
    gets all N values, identical to one process's (the batches do not depend on the world
    size, and mean field draws nothing)."""
    p = next(model.parameters())

    def batch(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
        return model.variational_free_energy(x[lo:hi].to(device=p.device, dtype=p.dtype))

    # Mean field is deterministic: the shard generators are never drawn from.
    unused = torch.Generator().manual_seed(0)
    return map_shards(len(x), batch_size, batch, 1, unused, distributed)[:, 0]


@torch.no_grad()
def reverse_ais_start_states(
    m, base, lo: int, hi: int, burn_in: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Start states (hi - lo, D_even) of reverse AIS runs lo..hi-1: run i starts from the
    state ``m.ais_model_states`` gives its row i (persistent chain i mod n_chains), then
    ``burn_in`` Gibbs sweeps at beta = 1 (``annealed_gibbs_step``, which at beta = 1 is the
    model's block Gibbs sweep on the even layers) drawing from ``generator``. Depends only on
    (lo, hi, generator), so that a shard of runs is the same in any process."""
    states = m.ais_model_states(hi, 0, generator)[lo:hi]
    for _ in range(burn_in):
        states = m.annealed_gibbs_step(states, 1.0, base, generator)
    return states


def variational_nll(
    model,
    x: torch.Tensor,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """Upper bound on the mean NLL (nats per example) of ``x`` (N, D): mean F_Q(x) + log Z.

    ``x_train`` builds the AIS base model. ``generator`` defaults to one seeded with
    ``eval_config.seed`` on the model's device. The model is not modified. The report has the
    keys of :func:`~genzoo.evaluation.energy.energy_nll` (nll_nats, stderr = sqrt(stderr_log_z^2
    + var_i / N), stderr_log_z, stderr_examples, estimator, n_samples, n_betas, log_z,
    log_z_reverse, nll_nats_reverse, stderr_log_z_reverse, reverse_start, ais_ess,
    ais_ess_reverse, n_examples, dtype, wall_s) plus ``bound`` (what nll_nats is) and
    ``variational_free_energy`` (mean F_Q(x)).

    ``distributed``: every rank of the default process group calls this with the same
    arguments; forward and reverse AIS runs and the batches of ``x`` are shared out in shards
    of ``eval.batch_size`` (shard s on rank s % world_size) and every rank returns the report
    one process would compute with the same seeds (the log weights of all runs are gathered
    before their logsumexp). Exact enumeration of log Z is not split.
    """
    start = time.perf_counter()
    dtype = DTYPES[eval_config.dtype]
    m, device = evaluation_copy(
        model, x, VARIATIONAL, dtype, "has no variational bound (variational_free_energy)"
    )
    report = log_z_report()
    z, base, betas, generator = forward_log_partition(
        m, model, x_train, eval_config, generator, dtype, device, report,
        exact_estimator="mean-field bound, exact log Z",
        ais_estimator="mean-field bound, AIS (forward) log Z",
        no_estimator="has neither a small enough parity of layers for exact enumeration of log Z "
        "nor AIS support",
        distributed=distributed,
    )
    if base is not None and eval_config.reverse:

        def start_states(lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
            return reverse_ais_start_states(m, base, lo, hi, eval_config.reverse_burn_in, g)

        z_rev = reverse_ais_from(
            m, base, betas, eval_config.ais_runs, start_states, generator, dtype,
            eval_config.batch_size, distributed=distributed,
        )
        add_reverse_log_z(
            report,
            z_rev,
            f"persistent chains + {eval_config.reverse_burn_in} Gibbs sweeps (approximate samples)",
        )

    f = variational_free_energies(m, x, eval_config.batch_size, distributed=distributed)
    require_finite(f, "variational free energy")
    add_nll_summary(
        report,
        f,
        z,
        eval_config.dtype,
        variational_free_energy=float(f.mean()),
        bound="upper bound on the NLL (mean-field variational bound with the estimated log Z)",
    )
    report["wall_s"] = time.perf_counter() - start
    return report
