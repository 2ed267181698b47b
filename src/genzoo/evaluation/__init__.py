"""Likelihood estimators over the model contracts, and :func:`evaluate`, which picks one from a
model's capabilities (:data:`ESTIMATORS`) and returns an :class:`EvaluationReport`. Every
likelihood is in nats per example on a named split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import (
    AIS,
    CONTINUOUS_ENERGY,
    ENERGY,
    EXACT_LIKELIHOOD,
    EXACT_LOG_PARTITION,
    FRAME_RBMS,
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
from genzoo.evaluation.classification import (
    classification_error,
    classification_estimate,
    classification_report,
)
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.energy import energy_nll
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.hmc_ais import hmc_energy_nll
from genzoo.evaluation.importance import (
    ImportanceEstimates,
    importance_log_px,
    importance_nll,
)
from genzoo.evaluation.likelihood import exact_nll
from genzoo.evaluation.report import EvaluationReport, SampleMeasures
from genzoo.evaluation.sample_based import sample_based_report
from genzoo.evaluation.sequence import sequence_nll
from genzoo.evaluation.stats import (
    Estimate,
    effective_sample_size,
    log_mean_exp,
    log_mean_exp_stderr,
)
from genzoo.evaluation.variational import variational_nll

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "EstimatorEntry",
    "EvalConfig",
    "EvaluationReport",
    "ImportanceEstimates",
    "SampleMeasures",
    "ais_log_partition",
    "classification_error",
    "classification_estimate",
    "classification_report",
    "effective_sample_size",
    "energy_nll",
    "estimator_for",
    "evaluate",
    "exact_log_partition",
    "exact_nll",
    "hmc_energy_nll",
    "importance_log_px",
    "importance_nll",
    "linear_schedule",
    "log_mean_exp",
    "log_mean_exp_stderr",
    "reverse_ais_log_partition",
    "sample_based_report",
    "sequence_nll",
    "sm08_schedule",
    "variational_nll",
]


# An estimator as the dispatch table calls it: (model, bundle, eval config, generator,
# distributed) -> the report of the split eval_config.split.
EstimatorFn = Callable[[Any, Any, EvalConfig, torch.Generator | None, bool], EvaluationReport]


class EstimatorEntry(NamedTuple):
    """One row of :data:`ESTIMATORS`: a model declaring ``capability`` (and, when ``with_any``
    is not empty, one of those too) is evaluated by ``estimate``; ``what`` says how."""

    capability: str
    estimate: EstimatorFn
    what: str
    with_any: tuple[str, ...] = ()

    def applies(self, model) -> bool:
        return has(model, self.capability) and (
            not self.with_any or any(has(model, c) for c in self.with_any)
        )


def _test_x(bundle, eval_config: EvalConfig) -> torch.Tensor:
    return bundle.split(eval_config.split).x


ESTIMATORS: tuple[EstimatorEntry, ...] = (
    EstimatorEntry(
        VARIATIONAL,
        lambda m, b, c, g, d: variational_nll(m, _test_x(b, c), b.train_x(0), c, g, distributed=d),
        "the mean-field bound F_Q(x) + log Z (with ais or exact_log_partition for log Z)",
        (AIS, EXACT_LOG_PARTITION),
    ),
    EstimatorEntry(
        ENERGY,
        lambda m, b, c, g, d: energy_nll(m, _test_x(b, c), b.train_x(0), c, g, distributed=d),
        "F(x) + log Z (with ais or exact_log_partition for log Z)",
        (AIS, EXACT_LOG_PARTITION),
    ),
    EstimatorEntry(
        CONTINUOUS_ENERGY,
        lambda m, b, c, g, d: hmc_energy_nll(m, _test_x(b, c), b.train_x(0), c, g, distributed=d),
        "F(x) + log Z by AIS with HMC transitions from a Gaussian fitted to the data",
    ),
    EstimatorEntry(
        FRAME_RBMS,
        lambda m, b, c, g, d: sequence_nll(m, _test_x(b, c), c, g),
        "sum over frames of F_t(v_t) + log Z_t, each frame's log Z exact or by AIS",
    ),
    EstimatorEntry(
        EXACT_LIKELIHOOD,
        lambda m, b, c, g, d: exact_nll(m, _test_x(b, c), c),
        "its exact log_prob",
    ),
    EstimatorEntry(
        LATENT,
        lambda m, b, c, g, d: importance_nll(m, _test_x(b, c), c, g, distributed=d),
        "importance sampling over proposal and log_joint",
    ),
    EstimatorEntry(
        IMPLICIT,
        lambda m, b, c, g, d: sample_based_report(m, b, c, g),
        "sample-based measures (Parzen window, MMD, Fréchet distance)",
    ),
)
"""Capability -> likelihood estimator, in priority order: a model is evaluated by the first
entry that applies to it (a DBM is both VARIATIONAL and ENERGY: its F(x) has no closed form, so
the bound comes first; a sequence of frame RBMs is evaluated frame by frame, nats per frame
reported beside nats per sequence, whether or not its log_prob is exact). Classification is not a row: it is added for any classifier
(:func:`~genzoo.core.protocols.is_classifier`: ``CLASSIFIER`` models such as the DBM
classifier, and generative models that also predict labels), and is the whole report of a
classifier without a likelihood."""


def estimator_for(model) -> EstimatorEntry | None:
    """The first entry of :data:`ESTIMATORS` that applies to ``model``, or None."""
    return next((entry for entry in ESTIMATORS if entry.applies(model)), None)


def _no_estimator(model) -> GenzooError:
    caps = ", ".join(sorted(getattr(model, "capabilities", ()))) or "none"
    ways = "; ".join(f"{entry.capability} -> {entry.what}" for entry in ESTIMATORS)
    return GenzooError(
        f"{type(model).__name__} (capabilities: {caps}) has no likelihood estimator and does "
        f"not predict labels, so there is nothing to evaluate. evaluate uses the first of "
        f"these capabilities that a model declares: {ways}; a model that learns from labels "
        "and predicts them (needs_labels and predict) gets its classification error. Declare "
        "the capability that fits the model in its `capabilities` and implement that "
        "capability's Protocol from genzoo.core.protocols (see docs/extending.md)"
    )


def _check_ais_memory(model, eval_config: EvalConfig) -> None:
    """Before any work: refuse AIS settings that need more memory than the machine has, for a
    model that AIS would evaluate (AIS capability, log Z not enumerated). Its hidden units are
    estimated as its parameter count over its input width (H of a D x H weight matrix)."""
    if not has(model, AIS) or eval_config.task == "classify":
        return
    if has(model, EXACT_LOG_PARTITION) and (
        model.enumerable_free_energy()[1] <= eval_config.exact_max_units
    ):
        return
    width = int(model.input_width)
    units = sum(p.numel() for p in model.parameters()) // max(width, 1)
    eval_config.check_memory(width, units)


def evaluate(
    model,
    bundle,
    eval_config: EvalConfig,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> EvaluationReport:
    """Evaluate ``model`` on ``bundle.split(eval_config.split).x`` with the estimator its
    capabilities call for (:data:`ESTIMATORS`, first match): the report of that estimator
    with ``split`` set.

    Variational-bound models (DBMs): :func:`variational_nll`, F_Q(x) + log Z. Energy models:
    :func:`energy_nll`, F(x) + log Z (exact log Z or AIS). The AIS base model is fitted to the
    training data the model saw, ``bundle.train_x(0)``: a binarized draw under dynamic
    binarization, whose pixel means are those of the grey levels. Exact-likelihood models: :func:`exact_nll`. Latent-variable models:
    :func:`importance_nll` (``eval_config.is_samples`` draws per example). Implicit models:
    Parzen window, MMD and feature-space statistics of samples (:func:`sample_based_report`).
    Models that learn from labels and ``predict`` them (disc-rbm, mp-dbm, dbm-classifier) also
    get the split's classification error with its binomial standard error
    (``report.classification``); for such a model with no likelihood estimator that is the
    whole report. On transformed real-valued data (``bundle.transform``) the NLL is turned into
    the density of the data space (:meth:`EvaluationReport.in_data_space`).

    ``distributed``: every rank of the initialised default process group (torchrun) calls
    this with the same arguments; AIS runs and importance-sampling chunks are shared out and
    every rank returns the report one process would compute (genzoo.evaluation.shards).
    """
    split = bundle.split(eval_config.split)
    classifier = is_classifier(model)
    entry = estimator_for(model)
    _check_ais_memory(model, eval_config)
    if eval_config.task == "classify" and not classifier:
        raise GenzooError(
            f"{type(model).__name__} does not predict labels, so eval.task=classify does not "
            "apply; drop --task (its likelihood figure is reported)"
        )
    if eval_config.task == "likelihood" and classifier and entry is None:
        raise GenzooError(
            f"{type(model).__name__} is a classifier without a likelihood; use --task classify"
        )
    if classifier and (eval_config.task == "classify" or entry is None):
        report = EvaluationReport(estimator="classification only", n_examples=len(split.x))
    elif entry is None:
        raise _no_estimator(model)
    else:
        report = entry.estimate(model, bundle, eval_config, generator, distributed)
    if classifier and eval_config.task != "likelihood":
        report = report.replace(classification=classification_estimate(model, split))
    report = report.replace(split=eval_config.split)
    # Real-valued data: report the density of the data space, not of the model's inputs.
    transform = getattr(bundle, "transform", None)
    if transform is not None:
        report = report.in_data_space(transform, split.x)
    return report
