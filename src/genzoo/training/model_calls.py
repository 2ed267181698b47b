"""Every question the training package asks of a model, in one place.

A model has ``loss(x, generator=...)`` and the training hooks of
:class:`genzoo.core.protocols.TrainingHooks` (``init_from_data(x)``, ``phases()``, parameter
groups stepped in turn as :class:`~genzoo.core.protocols.Phase`, ``[]`` for one loss;
``needs_labels``, its ``loss`` then takes ``y=``; ``validation_metrics(x)``), which
:class:`genzoo.models.base.GenzooModel` gives defaults; a model trained by the Trainer without
that base class (a user's own ``nn.Module``) may leave any hook out. ``sample(n, generator=...)``
is absent from classifiers. The rest of the package calls the functions below.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocols import Phase, is_classifier
from genzoo.models.base import GenzooModel, mean_field_inputs


def built_from(model: torch.nn.Module) -> Any | None:
    """The config ``model`` was built from (its ``config`` attribute), or None."""
    return getattr(model, "config", None)


def init_from_data(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Call ``model.init_from_data(x)`` without gradients when the model has it (x: (N, D))."""
    init = getattr(model, "init_from_data", None)
    if callable(init):
        with torch.no_grad():
            init(x)


def needs_labels(model: torch.nn.Module) -> bool:
    """True when the model learns from labels: its ``loss`` then takes ``y=`` (N,) int64."""
    return bool(getattr(model, "needs_labels", False))


def can_sample(model: torch.nn.Module) -> bool:
    """True when the model has ``sample(n, generator=...)``."""
    return callable(getattr(model, "sample", None))


def has_validation_metrics(model: torch.nn.Module) -> bool:
    """True when the model computes validation figures: it has ``validation_metrics(x) ->
    dict`` other than the base class's, which has none."""
    own = getattr(type(model), "validation_metrics", None)
    return callable(own) and own is not GenzooModel.validation_metrics


def model_phases(model: torch.nn.Module) -> list[Phase]:
    """``model.phases()`` checked (unique names, non-empty disjoint parameter sets of
    trainable parameters of the model), or [] for a model with one loss."""
    get = getattr(model, "phases", None)
    if not callable(get):
        return []
    phases = [Phase(*p) for p in get()]
    who = type(model).__name__
    owned = {id(p) for p in model.parameters()}
    seen: set[int] = set()
    names: set[str] = set()
    for ph in phases:
        if ph.name in names or not ph.name:
            raise ConfigError(f"{who}.phases(): phase name {ph.name!r} is empty or repeated")
        names.add(ph.name)
        ids = [id(p) for p in ph.parameters]
        if not ids or not all(p.requires_grad for p in ph.parameters):
            raise ConfigError(f"{who}.phases(): phase {ph.name!r} has no trainable parameters")
        if seen & set(ids) or not set(ids) <= owned:
            raise ConfigError(
                f"{who}.phases(): phase {ph.name!r} shares parameters with another phase or "
                "names parameters the model does not own"
            )
        seen |= set(ids)
    return phases


def loss_figures(model: torch.nn.Module, out: Any, *, check: bool) -> dict[str, float]:
    """The entries of ``model.loss(...)``'s dict as floats (``loss`` first if it came first).

    ``check`` verifies that every entry is a scalar tensor (done once: the keys do not change).
    """
    if not isinstance(out, dict) or "loss" not in out:
        raise TypeError(f"{type(model).__name__}.loss must return a dict with a 'loss' entry")
    keys = list(out)
    if check:
        for k in keys:
            v = out[k]
            if not isinstance(v, torch.Tensor) or v.dim() != 0:
                raise TypeError(f"{type(model).__name__}.loss()[{k!r}] must be a scalar tensor")
    # One device-to-host transfer for all figures (the loss check needs one anyway).
    flat = torch.stack([out[k].detach().to(torch.float64) for k in keys]).cpu().tolist()
    return dict(zip(keys, flat))


def nonfinite_parameter(model: torch.nn.Module) -> str | None:
    """Name of the first floating parameter or buffer holding NaN/Inf, else None."""
    named = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu()
    if bool(finite.all()):
        return None
    return named[int((~finite).nonzero()[0])][0]


def can_validate(model: torch.nn.Module, bundle: Any) -> bool:
    """True when the bundle has a non-empty valid split and the model has ``validation_metrics``
    or is a classifier (:func:`genzoo.core.protocols.is_classifier`) and the split has labels."""
    valid = getattr(bundle, "valid", None)
    if valid is None or getattr(valid, "x", None) is None or len(valid.x) == 0:
        return False
    labelled = getattr(valid, "y", None) is not None
    return has_validation_metrics(model) or (is_classifier(model) and labelled)


def validation_figures(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None
) -> dict[str, float]:
    """``model.validation_metrics(x)`` (when it has one) in eval mode without gradients, keys
    prefixed ``valid_``; for a classifier (:func:`is_classifier`) given the labels y (N,), also
    ``valid_error``, the :func:`~genzoo.evaluation.classification.classification_error` of x
    (N, D), the figure to early-stop a fine-tune on."""
    figures: dict[str, Any] = {}
    if has_validation_metrics(model):
        was_training = model.training
        model.eval()
        try:
            # data.grey_eval: a model with mean_field_input validates on grey levels too.
            with torch.no_grad(), mean_field_inputs():
                figures = dict(model.validation_metrics(x))
        finally:
            model.train(was_training)
    if y is not None and is_classifier(model) and "error" not in figures:
        from genzoo.evaluation.classification import classification_error

        figures["error"] = classification_error(model, x, y)
    return {f"valid_{k}": float(v) for k, v in figures.items()}


def sample_images(
    model: torch.nn.Module,
    n: int,
    image_shape: tuple[int, int],
    generator: torch.Generator,
    to_images: Callable[[torch.Tensor], torch.Tensor] | None = None,
    what: str = "the grid",
) -> torch.Tensor | None:
    """(n, H*W) float32 CPU images of ``n`` samples drawn in eval mode without gradients.

    ``to_images`` maps model-space samples (n, D) to (n, H*W) pixels in [0, 1] (a data
    bundle's ``to_images``: undoes a dequantising or logit transform, tiles image patches);
    None takes the samples as pixels. Warns that ``what`` is not drawn, and returns None,
    when the result is not (n, H*W) finite images.
    """
    h, w = image_shape
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.sample(n, generator=generator)
        if to_images is not None:
            x = to_images(x.float())
    finally:
        model.train(was_training)
    if x.dim() != 2 or x.shape[1] != h * w:
        warnings.warn(
            f"samples have shape {tuple(x.shape)}, not (n, {h * w}) for images {h}x{w}; "
            f"{what} not written",
            stacklevel=3,
        )
        return None
    finite = torch.isfinite(x).all(1)
    if not bool(finite.all()):
        # The run itself is fine (its checkpoint is written); only its picture cannot be drawn.
        warnings.warn(
            f"{int((~finite).sum())} of {len(x)} samples hold NaN or Inf (the model's sampler "
            f"overflowed far from the data); {what} not written",
            stacklevel=3,
        )
        return None
    return x.float().cpu()


def write_samples(
    model: torch.nn.Module,
    n: int,
    image_shape: tuple[int, int],
    generator: torch.Generator,
    path: Path,
    to_images: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Draw ``n`` samples (:func:`sample_images`) and save them as an image grid at ``path``;
    warns (and writes nothing) when they are not (n, H*W) images."""
    from genzoo.utils.images import save_image_grid

    x = sample_images(model, n, image_shape, generator, to_images, path.name)
    if x is not None:
        save_image_grid(x, image_shape, path)


def first_layer_filters(
    model: torch.nn.Module, image_shape: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]] | None:
    """The model's first-layer filters as images: ``model.filters()`` (images (K, h*w) and
    their shape (h, w)) when it has one, else the columns of its first visible-to-hidden
    weight matrix of shape (D = H*W, n_hidden) as (n_hidden, D) images of ``image_shape``:
    ``W`` itself (an RBM) or the first of its layers' matrices ``W[0]`` (a DBM, centered DBM
    or MP-DBM); None when the model has neither."""
    if callable(getattr(model, "filters", None)):
        return model.filters()
    W = getattr(model, "W", None)
    if isinstance(W, (torch.nn.ParameterList, list, tuple)) and len(W) > 0:
        W = W[0]
    d = image_shape[0] * image_shape[1]
    if not isinstance(W, torch.Tensor) or W.dim() != 2 or W.shape[0] != d:
        return None
    return W.detach().T.float().cpu(), tuple(image_shape)
