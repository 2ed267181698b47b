"""Likelihood estimators over the model contracts, and :func:`evaluate`, which picks one from a
model's capabilities. Every result is in nats per example on a named split."""

from __future__ import annotations

from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import ENERGY, EXACT_LIKELIHOOD, LATENT, has
from genzoo.evaluation.ais import (
    ais_log_partition,
    linear_schedule,
    reverse_ais_log_partition,
    sm08_schedule,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import energy_nll
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.importance import importance_log_likelihood, importance_nll
from genzoo.evaluation.likelihood import exact_nll
from genzoo.evaluation.stats import (
    Estimate,
    effective_sample_size,
    log_mean_exp,
    log_mean_exp_stderr,
)

__all__ = [
    "Estimate",
    "EvalConfig",
    "ais_log_partition",
    "effective_sample_size",
    "energy_nll",
    "evaluate",
    "exact_log_partition",
    "exact_nll",
    "importance_log_likelihood",
    "importance_nll",
    "linear_schedule",
    "log_mean_exp",
    "log_mean_exp_stderr",
    "reverse_ais_log_partition",
    "sm08_schedule",
]


def evaluate(
    model, bundle, eval_config: EvalConfig, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """Evaluate ``model`` on ``bundle.split(eval_config.split).x`` with the estimator its
    capabilities call for; returns the estimator's report plus ``"split"``.

    Energy models: :func:`energy_nll` (exact log Z or AIS, with ``bundle.train.x`` building the
    AIS base model). Exact-likelihood models: :func:`exact_nll`. Latent-variable models:
    :func:`importance_nll` (``eval_config.is_samples`` draws per example). Other families raise
    GenzooError until their estimator lands.
    """
    if has(model, ENERGY):
        x = bundle.split(eval_config.split).x
        report = energy_nll(model, x, bundle.train.x, eval_config, generator)
    elif has(model, EXACT_LIKELIHOOD):
        report = exact_nll(model, bundle.split(eval_config.split).x, eval_config)
    elif has(model, LATENT):
        report = importance_nll(model, bundle.split(eval_config.split).x, eval_config, generator)
    else:
        caps = ", ".join(sorted(getattr(model, "capabilities", ()))) or "none"
        raise GenzooError(
            f"no likelihood estimator is available yet for {type(model).__name__} "
            f"(capabilities: {caps}); only energy, exact-likelihood and latent-variable models "
            "can be evaluated in this release"
        )
    report["split"] = eval_config.split
    return report
