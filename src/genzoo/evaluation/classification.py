"""Classification error of models that predict labels (``predict(x) -> (B,) int64``), such
as the hybrid discriminative RBM and the MP-DBM: the one count every report and benchmark uses."""

from __future__ import annotations

from typing import Any

from genzoo.core.errors import GenzooError
from genzoo.ops.classification import classification_error

__all__ = ["classification_error", "classification_report"]


def classification_report(model, split) -> dict[str, Any]:
    """Error of ``model.predict`` on a labelled split: ``classification_error`` (a fraction)
    with its binomial standard error sqrt(e (1 - e) / N) and ``n_classified`` = N."""
    if split.y is None:
        raise GenzooError("this split has no labels, so classification error cannot be measured")
    n = len(split.x)
    err = classification_error(model, split.x, split.y)
    return {"classification_error": err,
            "classification_stderr": (err * (1 - err) / max(n, 1)) ** 0.5,
            "n_classified": n}
