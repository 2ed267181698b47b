"""Checks of user-supplied tensors, shared by every model. Each raises :class:`InputError`
with a message that names the fix."""

from __future__ import annotations

import torch

from genzoo.core.errors import InputError


def check_data(x: torch.Tensor, n_features: int, *, binary: bool, name: str = "x") -> None:
    """Check that ``x`` is a finite (B, n_features) floating tensor, in {0, 1} when ``binary``."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != n_features:
        raise InputError(
            f"{name} has shape {tuple(x.shape)}; expected (batch, {n_features}). "
            "Flatten images to vectors, e.g. x.reshape(len(x), -1)."
        )
    if not x.is_floating_point():
        raise InputError(f"{name} has dtype {x.dtype}; convert it with x.float()")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} contains NaN or Inf; clean or impute the data first")
    if binary and not bool(((x == 0) | (x == 1)).all()):
        raise InputError(
            f"{name} is not binary but this model has Bernoulli units: binarize it first "
            "(e.g. --data mnist --set data.binarize=dynamic, or use the binarized-mnist data set)"
        )


def check_binary(x: torch.Tensor, n_features: int, name: str = "x") -> None:
    """:func:`check_data` for Bernoulli models, with a fast path for the training loop:
    x - x * x == 0 holds exactly for 0 and 1 and fails for NaN, Inf and anything else, so one
    fused pass (addcmul) and a count decide; the full check runs only to word the error."""
    if (
        isinstance(x, torch.Tensor)
        and x.dim() == 2
        and x.shape[1] == n_features
        and x.is_floating_point()
        and int(torch.count_nonzero(torch.addcmul(x, x, x, value=-1.0))) == 0
    ):
        return
    check_data(x, n_features, binary=True, name=name)
