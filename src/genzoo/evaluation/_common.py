"""What every likelihood evaluator does the same way: refuse a model without the capability it
needs, check the data, work on a copy of the model in the evaluation precision, and report the
spread of per-example values."""

from __future__ import annotations

import copy
import math

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import has

DTYPES = {"float64": torch.float64, "float32": torch.float32}

# Report keys of estimators that do not apply to a given model (always present, so reports of
# every model have one shape).
NOT_APPLICABLE = ("n_samples", "n_betas", "log_z", "log_z_reverse", "nll_nats_reverse", "ais_ess")


def evaluation_copy(model, x: torch.Tensor, capability: str, dtype: torch.dtype, needs: str):
    """(copy of ``model`` in ``dtype`` and eval mode, its device) after checking that the model
    has ``capability`` (else GenzooError "<Model> <needs>") and that ``x`` is valid, non-empty
    input for it. The caller's model is never modified."""
    if not has(model, capability):
        raise GenzooError(f"{type(model).__name__} {needs}")
    check = getattr(model, "check_input", None)
    if check is not None:
        check(x, "x")
    if len(x) == 0:
        raise GenzooError("the evaluation split is empty")
    m = copy.deepcopy(model).to(dtype)
    m.eval()
    params = next(m.parameters(), None)
    return m, (params.device if params is not None else x.device)


def example_stderr(values: torch.Tensor) -> float:
    """Standard error of the mean of per-example values (N,): std / sqrt(N), 0 for N = 1."""
    n = len(values)
    return float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0


def require_finite(values: torch.Tensor, what: str) -> None:
    """GenzooError naming how many examples have a non-finite ``what``."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        raise GenzooError(
            f"{int(bad.sum())} example(s) have non-finite {what}; the run has diverged or the "
            "data do not match the model"
        )
