"""Classification error of models that predict labels (``predict(x) -> (B,) int64``), such
as the hybrid discriminative RBM and the MP-DBM: the one count every report and benchmark uses."""

from __future__ import annotations

from typing import Any

import torch

from genzoo.core.errors import GenzooError
from genzoo.evaluation.stats import Estimate
from genzoo.models.base import mean_field_inputs
from genzoo.ops.classification import classification_error as _count_errors

__all__ = ["classification_error", "classification_estimate", "classification_report"]


def classification_error(model, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000) -> float:
    """Fraction of the examples x (N, D) whose ``model.predict`` differs from y (N,) (eval
    mode, no gradients, ``chunk`` at a time). A model with ``mean_field_input`` may be given
    grey levels in [0, 1] (``data.grey_eval``): its mean-field inference reads them as the
    Bernoulli means of v."""
    with mean_field_inputs():
        return _count_errors(model, x, y, chunk)


def classification_estimate(model, split) -> Estimate:
    """Error of ``model.predict`` on a labelled split (``split.x`` (N, D), ``split.y`` (N,)):
    the fraction e of wrong labels with its binomial standard error sqrt(e (1 - e) / N),
    n_samples = N."""
    if split.y is None:
        raise GenzooError("this split has no labels, so classification error cannot be measured")
    n = len(split.x)
    err = classification_error(model, split.x, split.y)
    return Estimate(value=err, stderr=(err * (1 - err) / max(n, 1)) ** 0.5, n_samples=n,
                    estimator="classification error", unit="fraction of examples")


def classification_report(model, split) -> dict[str, Any]:
    """:func:`classification_estimate` as the keys of an evaluation report:
    ``classification_error`` (a fraction), ``classification_stderr`` and ``n_classified``."""
    est = classification_estimate(model, split)
    return {"classification_error": est.value, "classification_stderr": est.stderr,
            "n_classified": est.n_samples}
