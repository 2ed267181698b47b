"""Likelihood estimators over the model contracts, and :func:`evaluate`, which picks one from a
model's capabilities. Every result is in nats per example on a named split."""

from __future__ import annotations

from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import (
    AIS,
    ENERGY,
    EXACT_LIKELIHOOD,
    EXACT_LOG_PARTITION,
    IMPLICIT,
    LATENT,
    VARIATIONAL,
    has,
    is_classifier,
)
from genzoo.evaluation.ais import (
    ais_log_partition,
    linear_schedule,
    reverse_ais_log_partition,
    sm08_schedule,
)
from genzoo.evaluation.classification import classification_error, classification_report
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
    "classification_error",
    "classification_report",
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
    model,
    bundle,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``bundle.split(eval_config.split).x`` with the estimator its
    capabilities call for; returns the estimator's report plus ``"split"``.

    Energy models: :func:`energy_nll` (exact log Z or AIS, with the training data the model
    saw, ``bundle.train_x(0)``, building the AIS base model: a binarized draw under dynamic
    binarization, whose pixel means are those of the grey levels). Exact-likelihood models: :func:`exact_nll`. Latent-variable models:
    :func:`importance_nll` (``eval_config.is_samples`` draws per example). DBMs
    (``VARIATIONAL``): the mean-field bound with exact or AIS log Z. Implicit models: Parzen
    window, MMD and feature-space statistics of samples (``sample_based_report``). Models that
    learn from labels and ``predict`` them (disc-rbm, mp-dbm) also get the split's
    ``classification_error`` with its binomial standard error; for such a model with no
    likelihood estimator that is the whole report.

    ``distributed``: every rank of the initialised default process group (torchrun) calls
    this with the same arguments; AIS runs and importance-sampling chunks are shared out and
    every rank returns the report one process would compute (genzoo.evaluation.shards).
    """
    split = bundle.split(eval_config.split)
    classifier = is_classifier(model)
    likelihood = _has_likelihood_estimator(model)
    if eval_config.task == "classify" and not classifier:
        raise GenzooError(
            f"{type(model).__name__} does not predict labels, so eval.task=classify does not "
            "apply; drop --task (its likelihood figure is reported)"
        )
    if eval_config.task == "likelihood" and classifier and not likelihood:
        raise GenzooError(
            f"{type(model).__name__} is a classifier without a likelihood; use --task classify"
        )
    if classifier and (eval_config.task == "classify" or not likelihood):
        report: dict[str, Any] = {"estimator": "classification only", "n_examples": len(split.x)}
    elif has(model, VARIATIONAL):
        from genzoo.evaluation.variational import variational_nll

        x = bundle.split(eval_config.split).x
        report = variational_nll(
            model, x, bundle.train_x(0), eval_config, generator, distributed=distributed
        )
    elif has(model, ENERGY):
        x = bundle.split(eval_config.split).x
        report = energy_nll(
            model, x, bundle.train_x(0), eval_config, generator, distributed=distributed
        )
    elif has(model, EXACT_LIKELIHOOD):
        report = exact_nll(model, bundle.split(eval_config.split).x, eval_config)
    elif has(model, LATENT):
        report = importance_nll(
            model, bundle.split(eval_config.split).x, eval_config, generator,
            distributed=distributed,
        )
    elif has(model, IMPLICIT):
        from genzoo.evaluation.sample_based import sample_based_report

        report = sample_based_report(model, bundle, eval_config, generator)
    else:
        caps = ", ".join(sorted(getattr(model, "capabilities", ()))) or "none"
        raise GenzooError(
            f"no likelihood estimator is available yet for {type(model).__name__} "
            f"(capabilities: {caps}); only energy, exact-likelihood and latent-variable models "
            "can be evaluated in this release"
        )
    if classifier and eval_config.task != "likelihood":
        report.update(classification_report(model, split))
    report["split"] = eval_config.split
    # Real-valued data: report the density of the data space, not of the model's inputs.
    transform = getattr(bundle, "transform", None)
    if transform is not None:
        report = transform.to_data_space(report, bundle.split(eval_config.split).x)
    return report


def _has_likelihood_estimator(model) -> bool:
    if has(model, ENERGY):
        return has(model, AIS) or has(model, EXACT_LOG_PARTITION)
    return any(has(model, c) for c in (VARIATIONAL, EXACT_LIKELIHOOD, LATENT, IMPLICIT))
