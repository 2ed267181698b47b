"""Test NLL bound of models with a mean-field variational bound (deep Boltzmann machines).

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 4: for any Q(h | v),

    log p(v) >= -F_Q(v) - log Z,    F_Q(v) = E_Q[E(v, h)] - H(Q)

so -log p(v) <= F_Q(v) + log Z, reported per example in nats. log Z is exact (enumeration of the
smaller parity of layers) when that has at most ``eval.exact_max_units`` units, otherwise
estimated by AIS over the model's annealing path (alternate layers summed out analytically),
forward and, with ``eval.reverse``, reverse. Forward AIS underestimates log Z in expectation, so
the reported bound is itself a stochastic estimate: the NLL bound with the reverse log Z
(``nll_nats_reverse``) is the conservative one, as far as the chains that start it have mixed.
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
from genzoo.evaluation.ais import reverse_ais_log_partition
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import forward_log_partition


@torch.no_grad()
def variational_free_energies(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """F_Q(x) (N,) float64 of a ``VARIATIONAL`` model, in batches, on the model's device and
    dtype. The model is used as given (no copy)."""
    p = next(model.parameters())
    return torch.cat(
        [
            model.variational_free_energy(x[s : s + batch_size].to(device=p.device, dtype=p.dtype))
            for s in range(0, len(x), batch_size)
        ]
    ).to(torch.float64)


def variational_nll(
    model,
    x: torch.Tensor,
    x_train: torch.Tensor,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Upper bound on the mean NLL (nats per example) of ``x`` (N, D): mean F_Q(x) + log Z.

    ``x_train`` builds the AIS base model. ``generator`` defaults to one seeded with
    ``eval_config.seed`` on the model's device. The model is not modified. The report has the
    keys of :func:`~genzoo.evaluation.energy.energy_nll` (nll_nats, stderr = sqrt(stderr_log_z^2
    + var_i / N), stderr_log_z, stderr_examples, estimator, n_samples, n_betas, log_z,
    log_z_reverse, nll_nats_reverse, stderr_log_z_reverse, reverse_start, ais_ess,
    ais_ess_reverse, n_examples, dtype, wall_s) plus ``bound`` (what nll_nats is) and
    ``variational_free_energy`` (mean F_Q(x)).
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
    )
    if base is not None and eval_config.reverse:
        states = m.ais_model_states(eval_config.ais_runs, eval_config.reverse_burn_in, generator)
        z_rev = reverse_ais_log_partition(
            m, base, betas, states, generator, dtype, eval_config.batch_size
        )
        add_reverse_log_z(
            report,
            z_rev,
            f"persistent chains + {eval_config.reverse_burn_in} Gibbs sweeps (approximate samples)",
        )

    f = variational_free_energies(m, x, eval_config.batch_size)
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
