"""Classification error of models that predict labels (``predict(x) -> (B,) int64``), such
as the hybrid discriminative RBM and the MP-DBM: the one count every report and benchmark uses."""

from __future__ import annotations

from typing import Any

from genzoo.core.errors import GenzooError
from genzoo.evaluation.stats import Estimate
from genzoo.ops.classification import classification_error

__all__ = ["classification_error", "classification_estimate", "classification_report"]


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
