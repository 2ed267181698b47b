"""The check of user-supplied data tensors, shared by every model
(:meth:`genzoo.models.base.GenzooModel.check_input` calls it). It raises :class:`InputError`
with a message that names what is wrong and the fix."""

from __future__ import annotations

import torch

from genzoo.core.errors import InputError


def check_data(
    x: torch.Tensor,
    n_features: int,
    *,
    binary: bool,
    value_range: tuple[float, float] | None = None,
    name: str = "x",
) -> None:
    """Check that ``x`` is a finite (B, n_features) floating tensor, in {0, 1} when ``binary``,
    in [lo, hi] when ``value_range`` is given.

    It runs on every training minibatch, so a passing x costs one fused pass and one read
    back: for binary data x - x * x == 0 holds exactly for 0 and 1 and fails for NaN, Inf and
    anything else; a range test fails for NaN and Inf too. The full check runs only to word
    the error.
    """
    if (
        isinstance(x, torch.Tensor)
        and x.dim() == 2
        and x.shape[1] == n_features
        and x.is_floating_point()
    ):
        if binary:
            ok = int(torch.count_nonzero(torch.addcmul(x, x, x, value=-1.0))) == 0
        elif value_range is not None:
            ok = bool(((x >= value_range[0]) & (x <= value_range[1])).all())
        else:
            ok = bool(torch.isfinite(x).all())
        if ok:
            return
    _raise_why(x, n_features, binary, value_range, name)


def _raise_why(x, n_features, binary, value_range, name) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            "convert with torch.as_tensor(x).float()"
        )
    if x.dim() != 2 or x.shape[1] != n_features:
        got = f"(B, {x.shape[1]})" if x.dim() == 2 else f"shape {tuple(x.shape)}"
        raise InputError(
            f"{name} has the wrong shape: this model expects (B, {n_features}) inputs, got "
            f"{got}; flatten images with x.reshape(len(x), -1), and give it data with the "
            f"expected {n_features} features (or build the model with model.n_visible set to "
            "the data's width)"
        )
    if not x.is_floating_point():
        raise InputError(f"{name} has dtype {x.dtype}; the model needs floats: convert with "
                         "x.float()")
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} contains NaN or Inf; clean or impute the data first")
    if binary:
        raise InputError(
            f"{name} is not binary but this model has Bernoulli units: binarize it: "
            "data.binarize=dynamic or data.binarize=threshold on the command line (or use the "
            "binarized-mnist data set), torch.bernoulli(x) in Python"
        )
    if value_range is not None:
        lo, hi = value_range
        raise InputError(f"{name} has values outside [{lo:g}, {hi:g}]; scale it into that "
                         "range (e.g. pixel values / 255)")


def check_observed_mask(mask, x: torch.Tensor) -> torch.Tensor:
    """The observed-entries mask of an inpainting or conditional call as a (B, D) bool tensor on
    x's device (True = observed). ``mask``: a bool tensor of shape (B, D) or (D,)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise InputError("observed_mask must be a bool tensor (True = observed), (B, D) or (D,)")
    if mask.shape not in (x.shape, x.shape[1:]):
        raise InputError(
            f"observed_mask has shape {tuple(mask.shape)}; expected {tuple(x.shape)} or "
            f"{tuple(x.shape[1:])}"
        )
    return mask.to(x.device).expand_as(x)
